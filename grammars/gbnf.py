"""Compile a decision model's JSON schema into a llama.cpp GBNF grammar, with its worst-case size.

Only the schema shapes the decision models use are supported; anything else raises
`GrammarBuildError` naming the schema path, so a new field type cannot slip into a grammar
half-translated. Every repetition is bounded (`{m,n}`), nothing is left-recursive, strings hold no
raw control characters, and the largest possible answer is computed exactly (in bytes; a token
always adds at least one byte, so this is also a bound on the answer's tokens).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from messages.decisions import NAME_PATTERN, TEXT_PATTERN
from messages.errors import WatcherError

WS_MAX = 6
"""Whitespace between tokens: up to 6 of space/tab/newline (a newline and an indent, bounded)."""

FRACTION_DIGITS = 6
"""Digits after the decimal point of a parameter value (micro-precision is plenty for settings)."""

CONFIDENCE_DIGITS = 4
"""Digits after the decimal point of a confidence (0.0001 resolution)."""


class GrammarBuildError(WatcherError):
    """Raised when a model's schema uses a shape the GBNF compiler does not translate."""


def _literal(text: str) -> str:
    """A GBNF string literal for `text` (which is plain ASCII here)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rule_name(hint: str) -> str:
    """A GBNF rule name from a field or class name: lowercase letters, digits and dashes."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", hint)
    name = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return name or "value"


@dataclass
class GrammarBuilder:
    """Collects named rules (deduplicated by body) and the largest size each can produce."""

    rules: dict[str, str] = field(default_factory=dict)
    max_bytes: dict[str, int] = field(default_factory=dict)
    _by_body: dict[str, str] = field(default_factory=dict)

    def rule(self, hint: str, body: str, max_bytes: int) -> str:
        """Add rule `body` under a name derived from `hint` (or reuse an identical one)."""
        if body in self._by_body:
            return self._by_body[body]
        name = base = _rule_name(hint)
        n = 2
        while name in self.rules or (name == "root" and hint != "root"):
            name = f"{base}-{n}"
            n += 1
        self.rules[name] = body
        self.max_bytes[name] = max_bytes
        self._by_body[body] = name
        return name

    def common(self) -> None:
        """Add the shared rules every grammar uses."""
        self.rule("ws", f"[ \\t\\n]{{0,{WS_MAX}}}", WS_MAX)
        self.rule("sp", '" "?', 1)
        self.rule("boolean", '"true" | "false"', 5)

    def render(self, header: str) -> str:
        """The grammar file: a header comment, `root` first, then the rules in order of creation."""
        lines = [f"# {line}".rstrip() for line in header.splitlines()]
        lines.append(f"# max_bytes: {self.max_bytes['root']}")
        lines.append("")
        order = ["root", *(n for n in self.rules if n != "root")]
        width = max(len(n) for n in order)
        lines.extend(f"{n.ljust(width)} ::= {self.rules[n]}" for n in order)
        return "\n".join(lines) + "\n"


def text_rule(b: GrammarBuilder, min_len: int, max_len: int) -> str:
    """A JSON string of printable ASCII without `"` or `\\`, `min_len`..`max_len` characters."""
    body = f'"\\"" [ !#-\\[\\]-~]{{{min_len},{max_len}}} "\\""'
    # Named by their bounds, so fields with identical bounds share one rule.
    return b.rule(f"text-{min_len}-{max_len}" if min_len else f"text-{max_len}", body, max_len + 2)


def name_rule(b: GrammarBuilder) -> str:
    """A JSON string matching NAME_PATTERN (lowercase snake case, 1 to 32 characters)."""
    return b.rule("name", '"\\"" [a-z] [a-z0-9_]{0,31} "\\""', 34)


def _power_of_ten(value: float, where: str) -> int:
    """The k with 10**k == value, or a GrammarBuildError."""
    k = round(math.log10(value)) if value > 0 else -1
    if k < 1 or 10.0**k != value:
        msg = f"{where}: number bound {value!r} is not a power of ten >= 10"
        raise GrammarBuildError(msg)
    return k


def number_rule(b: GrammarBuilder, schema: dict[str, Any], where: str, hint: str) -> str:
    """A JSON number within the schema's bounds: [0, 1], (-10^k, 10^k) or [0, 10^k)."""
    integer = schema["type"] == "integer"
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    hi = schema.get("maximum", schema.get("exclusiveMaximum"))
    if (lo, hi) == (0, 1) and not integer and "minimum" in schema and "maximum" in schema:
        body = (
            f'"0" ("." [0-9]{{1,{CONFIDENCE_DIGITS}}})? | "1" ("." "0"{{1,{CONFIDENCE_DIGITS}}})?'
        )
        return b.rule("unit-interval", body, 2 + CONFIDENCE_DIGITS)
    if hi is None:
        msg = f"{where}: a number needs an upper bound so its size is bounded"
        raise GrammarBuildError(msg)
    k = _power_of_ten(float(hi), where)
    # 10**k - 10**-digits < 10**k: the grammar never reaches an exclusive or inclusive bound.
    if lo is not None and float(lo) == -float(hi):
        sign, sign_len = '"-"? ', 1
    elif lo is not None and float(lo) == 0 and "minimum" in schema:
        sign, sign_len = "", 0
    else:
        msg = f"{where}: number bounds ({lo!r}, {hi!r}) must be (-10^k, 10^k) or [0, 10^k)"
        raise GrammarBuildError(msg)
    digits = f'("0" | [1-9] [0-9]{{0,{k - 1}}})'
    if integer:
        return b.rule(f"integer-{k}", sign + digits, sign_len + k)
    body = f'{sign}{digits} ("." [0-9]{{1,{FRACTION_DIGITS}}})?'
    return b.rule(f"number-{k}", body, sign_len + k + 1 + FRACTION_DIGITS)


@dataclass
class SchemaCompiler:
    """Compiles one pydantic JSON schema (with its `$defs`) into rules of a GrammarBuilder."""

    schema: dict[str, Any]
    builder: GrammarBuilder = field(default_factory=GrammarBuilder)

    def compile_root(self) -> GrammarBuilder:
        """Compile the whole schema; the top object becomes `root`."""
        self.builder.common()
        body, size = self._object_body(self.schema, "root")
        self.builder.rule("root", body, size)
        return self.builder

    def _size(self, name: str) -> int:
        return self.builder.max_bytes[name]

    def _node(self, schema: dict[str, Any], where: str, hint: str) -> str:
        """Compile any schema node to a rule name."""
        b = self.builder
        if "$ref" in schema:
            ref = schema["$ref"].removeprefix("#/$defs/")
            return self._node(self.schema["$defs"][ref], f"{where}->{ref}", ref)
        if "anyOf" in schema:
            names = [self._node(s, f"{where}|{i}", hint) for i, s in enumerate(schema["anyOf"])]
            size = max(self._size(n) for n in names)
            return b.rule(f"{hint}-or-{names[-1]}", " | ".join(names), size)
        kind = schema.get("type")
        if "enum" in schema:
            values = [str(v) for v in schema["enum"]]
            body = " | ".join(_literal(f'"{v}"') for v in values)  # JSON strings
            return b.rule(hint, body, max(len(v) for v in values) + 2)
        if kind == "null":
            return b.rule("null", '"null"', 4)
        if kind == "boolean":
            return "boolean"
        if kind in {"number", "integer"}:
            return number_rule(b, schema, where, hint)
        if kind == "string":
            return self._string(schema, where, hint)
        if kind == "array":
            return self._array(schema, where, hint)
        if kind == "object" and "properties" in schema:
            body, size = self._object_body(schema, where)
            return b.rule(hint, body, size)
        if kind == "object" and "patternProperties" in schema:
            return self._mapping(schema, where, hint)
        msg = f"{where}: schema {schema!r} has no GBNF translation"
        raise GrammarBuildError(msg)

    def _string(self, schema: dict[str, Any], where: str, hint: str) -> str:
        pattern = schema.get("pattern")
        if pattern == NAME_PATTERN:
            return name_rule(self.builder)
        if pattern != TEXT_PATTERN or "maxLength" not in schema:
            msg = f"{where}: strings must use TEXT_PATTERN with a maxLength (got {schema!r})"
            raise GrammarBuildError(msg)
        return text_rule(self.builder, schema.get("minLength", 0), schema["maxLength"])

    def _array(self, schema: dict[str, Any], where: str, hint: str) -> str:
        if schema.get("minItems", 0) != 0 or "maxItems" not in schema:
            msg = f"{where}: arrays need maxItems and no minItems (got {schema!r})"
            raise GrammarBuildError(msg)
        n = schema["maxItems"]
        item = self._node(schema["items"], f"{where}[]", f"{hint}-item")
        body = f'"[" ws ({item} ws ("," ws {item} ws){{0,{n - 1}}})? "]"'
        size = 2 + WS_MAX + n * (self._size(item) + WS_MAX) + (n - 1) * (1 + WS_MAX)
        return self.builder.rule(f"{hint}-list", body, size)

    def _mapping(self, schema: dict[str, Any], where: str, hint: str) -> str:
        patterns = schema["patternProperties"]
        if list(patterns) != [NAME_PATTERN] or "maxProperties" not in schema:
            msg = f"{where}: mappings need NAME_PATTERN keys and maxProperties (got {schema!r})"
            raise GrammarBuildError(msg)
        n = schema["maxProperties"]
        key = name_rule(self.builder)
        value = self._node(patterns[NAME_PATTERN], f"{where}{{}}", f"{hint}-value")
        entry = self.builder.rule(
            f"{hint}-entry",
            f'{key} ":" sp {value} ws',
            self._size(key) + 2 + self._size(value) + WS_MAX,
        )
        body = f'"{{" ws ({entry} ("," ws {entry}){{0,{n - 1}}})? "}}"'
        size = 2 + WS_MAX + n * self._size(entry) + (n - 1) * (1 + WS_MAX)
        return self.builder.rule(f"{hint}-map", body, size)

    def _object_body(self, schema: dict[str, Any], where: str) -> tuple[str, int]:
        """Every property but `schema_version`, in declared order, each one present."""
        parts: list[str] = []
        size = 2  # the braces
        props = [(k, v) for k, v in schema["properties"].items() if k != "schema_version"]
        for i, (key, sub) in enumerate(props):
            value = self._node(sub, f"{where}.{key}", key)
            comma = '"," ' if i else ""
            key_literal = _literal(f'"{key}":')
            parts.append(f"{comma}ws {key_literal} sp {value} ws")
            size += (1 if i else 0) + WS_MAX + len(key) + 3 + 1 + self._size(value) + WS_MAX
        return '"{" ' + " ".join(parts) + ' "}"', size


def compile_schema(schema: dict[str, Any], header: str) -> str:
    """The GBNF text for a pydantic JSON schema, `header` as its leading comment."""
    return SchemaCompiler(schema).compile_root().render(header)


def generic_json_grammar(header: str) -> str:
    """Free JSON: an object of up to 6 members, nested 2 levels deep, every size bounded."""
    b = GrammarBuilder()
    b.common()
    size = b.max_bytes
    key = text_rule(b, 1, 24)
    string = text_rule(b, 0, 40)
    number = b.rule(
        "number",
        '"-"? ("0" | [1-9] [0-9]{0,14}) ("." [0-9]{1,6})? ([eE] [-+]? [0-9]{1,2})?',
        1 + 15 + 7 + 4,
    )
    scalar = b.rule(
        "scalar", f'{string} | {number} | boolean | "null"', max(size[string], size[number])
    )
    # Leaves hold at most 3 scalars, the top object at most 6 members: worst case under 2,000 B.
    leaf_array = b.rule(
        "leaf-array",
        f'"[" ws ({scalar} ws ("," ws {scalar} ws){{0,2}})? "]"',
        2 + WS_MAX + 3 * (size[scalar] + WS_MAX) + 2 * (1 + WS_MAX),
    )
    leaf_member = b.rule(
        "leaf-member", f'{key} ":" sp {scalar} ws', size[key] + 2 + size[scalar] + WS_MAX
    )
    leaf_object = b.rule(
        "leaf-object",
        f'"{{" ws ({leaf_member} ("," ws {leaf_member}){{0,2}})? "}}"',
        2 + WS_MAX + 3 * size[leaf_member] + 2 * (1 + WS_MAX),
    )
    value = b.rule(
        "value",
        f"{scalar} | {leaf_array} | {leaf_object}",
        max(size[scalar], size[leaf_array], size[leaf_object]),
    )
    member = b.rule("member", f'{key} ":" sp {value} ws', size[key] + 2 + size[value] + WS_MAX)
    b.rule(
        "root",
        f'"{{" ws ({member} ("," ws {member}){{0,5}})? "}}"',
        2 + WS_MAX + 6 * size[member] + 5 * (1 + WS_MAX),
    )
    return b.render(header)
