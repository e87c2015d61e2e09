"""Build a tiny random-weight llama GGUF for grammar fuzzing: 2 layers, 410 tokens, < 1 s.

The vocabulary is SentencePiece-style with byte fallback: 256 byte tokens (so any text can be
spelled), the printable ASCII characters, and the quoted keys and enum values of the decision
grammars (so answers take fewer steps). The weights are random: the point is a model that wants
to write anything at all, and a grammar that must hold it to the schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gguf
import numpy as np

from messages.decisions import GRAMMAR_MODELS

if TYPE_CHECKING:
    from pathlib import Path

N_EMBD = 64
N_HEAD = 4
N_FF = 128
N_LAYER = 2
CONTEXT_LENGTH = 32768
EOS_ID = 2
QUOTE_BIAS = 0.9
OUTPUT_SCALE = 0.15
SPACE_BIAS = -0.8
PIECE_BIAS = 0.6

# SentencePiece token types (llama.cpp's LLAMA_TOKEN_TYPE_*).
_NORMAL, _UNKNOWN, _CONTROL, _BYTE = 1, 2, 3, 6


def _pieces() -> list[str]:
    """Every key (as `"key":`) and enum value (as `"value"`) of the decision models: one token each.

    Whole structural pieces keep a fuzz answer at ~100 tokens instead of ~200, which halves the
    fuzz test's time; free text is still spelled character by character.
    """
    pieces: set[str] = {"true", "false", "null"}
    for model in GRAMMAR_MODELS.values():
        schema = model.model_json_schema()
        for sub in [schema, *schema.get("$defs", {}).values()]:
            pieces.update(f'"{key}":' for key in sub.get("properties", {}))
            pieces.update(f'"{value}"' for value in sub.get("enum", []))
    pieces.discard('"schema_version":')
    return sorted(pieces)


def vocabulary() -> list[tuple[str, float, int]]:
    """(piece, score, type) for every token, in id order."""
    vocab: list[tuple[str, float, int]] = [
        ("<unk>", 0.0, _UNKNOWN),
        ("<s>", 0.0, _CONTROL),
        ("</s>", 0.0, _CONTROL),
    ]
    vocab += [(f"<0x{b:02X}>", 0.0, _BYTE) for b in range(256)]
    singles = ["\u2581", *(chr(c) for c in range(0x21, 0x7F))]  # U+2581 is SentencePiece's space
    vocab += [(s, -1.0, _NORMAL) for s in singles]
    vocab += [(p, float(len(p)), _NORMAL) for p in _pieces()]
    return vocab


def build_tiny_gguf(path: Path, *, seed: int = 0, chat_template: str | None = None) -> Path:
    """Write the tiny model to `path` and return it; the same seed gives the same file."""
    rng = np.random.default_rng(seed)
    vocab = vocabulary()
    n_vocab = len(vocab)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("watcher-tiny-fuzz")
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([p for p, _, _ in vocab])
    writer.add_token_scores([s for _, s, _ in vocab])
    writer.add_token_types([t for _, _, t in vocab])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(EOS_ID)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)

    def weight(*shape: int, scale: float) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    embd = weight(n_vocab, N_EMBD, scale=1.0)
    # Dimension 0 is a constant the layers barely disturb; the output reads it to push </s> far
    # down, so unconstrained text runs on (the kill test needs a long generation).
    embd[:, 0] = 8.0
    output = weight(n_vocab, N_EMBD, scale=OUTPUT_SCALE)
    output[:, 0] = 0.0
    output[EOS_ID, 0] = -4.0
    # Nudges that keep fuzz answers short (a closing quote is likely, whitespace is not) while
    # every token stays possible.
    pieces = [p for p, _, _ in vocab]
    output[pieces.index('"'), 0] = QUOTE_BIAS
    for piece in _pieces():
        output[pieces.index(piece), 0] = PIECE_BIAS
    for space in ("\u2581", "<0x20>", "<0x09>", "<0x0A>"):
        output[pieces.index(space), 0] = SPACE_BIAS
    writer.add_tensor("token_embd.weight", embd)
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    proj = 1.0 / np.sqrt(N_EMBD)
    for i in range(N_LAYER):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(N_EMBD, N_EMBD, scale=proj))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(N_FF, N_EMBD, scale=proj))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(N_FF, N_EMBD, scale=proj))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(N_EMBD, N_FF, scale=proj))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
