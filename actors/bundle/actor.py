"""BundleActor: the single entry point for LLM context (Guardrail #1).

`BuildBundle` → `BundleBuilt(prompt, grammar_name, bundle, thresholds)`. The build hashes state
files and reads tier 2 from the store, so it runs in the store's worker thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from actors.bundle.retrieval import SqliteRetriever
from actors.llm.models import resolve_model
from actors.runtime import Actor, handles
from bundle_factory import LlamaVocabTokenizer, TokenBudget, TokenizerError, build_llm_context
from messages.bundle import BuildBundle, BundleBuilt

if TYPE_CHECKING:
    import sqlite3

    from actors.services import Services
    from bundle_factory import StepAwarenessBundle, Tokenizer


class BundleActor(Actor):
    """Builds and renders context bundles; nothing else in the system renders a prompt."""

    def __init__(self, services: Services, *, tokenizer: Tokenizer | None = None) -> None:
        super().__init__()
        self.services = services
        self.tokenizer = tokenizer
        cfg = services.settings.bundle
        self.budgets = TokenBudget(**cfg.model_dump())

    async def on_start(self) -> None:
        if self.tokenizer is not None:
            return
        llm = self.services.settings.llm
        cache = self.services.paths.cache
        path = await anyio.to_thread.run_sync(lambda: resolve_model(llm.model, cache_dir=cache))
        if path is None:
            self.log.info("bundle.tokenizer", tokenizer="estimator", reason="no model configured")
            return
        try:
            self.tokenizer = await anyio.to_thread.run_sync(LlamaVocabTokenizer, path)
        except TokenizerError as exc:
            # Counting with the estimator over-counts (1.2-1.5x): safe, never over budget.
            self.log.warning("bundle.tokenizer_unavailable", error=str(exc))
        else:
            self.log.info("bundle.tokenizer", tokenizer="model vocabulary", model=str(path))

    @handles(BuildBundle)
    async def on_build_bundle(self, msg: BuildBundle) -> BundleBuilt:
        """Assemble, budget and render the context of one decision."""

        def build(conn: sqlite3.Connection) -> tuple[str, str, StepAwarenessBundle]:
            return build_llm_context(
                msg.step_id,
                msg.results,
                run_id=msg.run_id,
                state_paths=msg.state_paths,
                state_dir=self.services.paths.root,
                is_chapter_13=msg.is_chapter_13,
                retriever=SqliteRetriever(conn),
                tokenizer=self.tokenizer,
                budgets=self.budgets,
            )

        prompt, grammar_name, bundle = await self.services.store.run(build)
        self.log.info(
            "bundle.built", step_id=msg.step_id, grammar=grammar_name, prompt_chars=len(prompt)
        )
        return BundleBuilt.caused_by(
            msg,
            sender=self.name,
            prompt=prompt,
            grammar_name=grammar_name,
            bundle=bundle.model_dump(mode="json"),
            thresholds=bundle.context.evaluation_schema.thresholds,
        )
