"""Hypothesis strategies for result payloads (JSON-like, nested)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Keys stay shorter than the tightest rung's 40 characters, so a key is either shown whole or
# counted by a marker; that is what the properties check.
keys = st.text(min_size=1, max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=120)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=40) | st.dictionaries(keys, children, max_size=40),
    max_leaves=150,
)
payloads: st.SearchStrategy[dict[str, Any]] = st.dictionaries(keys, json_values, max_size=40)
