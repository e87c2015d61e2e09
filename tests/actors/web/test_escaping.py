"""Whatever a reason, a rule or an id holds, the pages show it as text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from actors.web.app import TEMPLATES

hostile = st.text(
    alphabet=st.sampled_from(list("<>&\"'`/=() ascript:onerror{}%")) | st.characters(),
    min_size=1,
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(hostile, hostile, hostile)
def test_pending_page_escapes_every_user_field(reason: str, title: str, ident: str) -> None:
    """Reasons, titles and ids reach the HTML escaped: no tag or attribute from the input."""
    item = {
        "kind": "decision",
        "id": ident,
        "title": title,
        "reasons": [reason],
        "evidence": {"note": reason},
        "since": "now",
        "correlation_id": "c",
        "actions": ["approve", "reject"],
    }
    page = TEMPLATES.get_template("pending.html").render(
        fragment=True, page="pending", items=[item], writes=True
    )
    assert f'<li class="reason">{escape(reason)}</li>' in page
    assert f"{escape(title)}</h3>" in page
    # Nothing the input holds becomes markup: every '<' in the page is one of the template's.
    template_tags = (
        TEMPLATES.get_template("pending.html")
        .render(
            fragment=True,
            page="pending",
            items=[{**item, "id": "x", "title": "x", "reasons": ["x"], "evidence": {"note": "x"}}],
            writes=True,
        )
        .count("<")
    )
    assert page.count("<") == template_tags
