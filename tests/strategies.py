"""Hypothesis strategies for what the outside world sends us."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

__all__ = [
    "json_values",
    "nasty_text",
    "page_properties",
    "property_value",
    "rich_text",
    "webhook_bodies",
]

CALENDAR_PROPERTIES = (
    "Title",
    "Channel",
    "Topic",
    "Story Direction",
    "Status",
    "Priority",
    "Error Log",
    "YouTube URL",
)
PROPERTY_TYPES = (
    "title",
    "rich_text",
    "select",
    "status",
    "url",
    "number",
    "checkbox",
    "date",
    "people",
    "relation",
    "formula",
    "multi_select",
    "bogus",
)
# Text Notion can hold that a database or an encoder may not: NUL, lone surrogates,
# right-to-left and combining marks, emoji beyond the BMP, and 2,000 UTF-16 units.
AWKWARD_TEXTS = (
    "",
    " ",
    "\x00",
    "Null \x00 in the middle",
    "\ud800",
    "lone \udfff low surrogate",
    "שלום مرحبا \u202e reversed \u202c",
    "🎬" * 1000,
    ("🎬 שלום مرحبا ") * 142,
    "e\u0301" * 500,
    "\\u0000 spelled out",
    "'; DROP TABLE tasks; --",
)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value: nested lists and objects of nulls, booleans, numbers and text."""
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def nasty_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Any text, surrogates and control characters included, or one of the awkward ones."""
    anything = st.text(st.characters(exclude_categories=()), max_size=max_size)
    return st.one_of(anything, st.sampled_from(AWKWARD_TEXTS))


def _odd_scalar() -> st.SearchStrategy[Any]:
    """A value of the wrong type where text or an object belongs."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        nasty_text(),
        st.lists(st.integers(), max_size=2),
    )


def rich_text() -> st.SearchStrategy[Any]:
    """A rich-text array as Notion returns it, with odd elements mixed in."""
    element = st.one_of(
        nasty_text().map(
            lambda t: {"type": "text", "text": {"content": t, "link": None}, "plain_text": t}
        ),
        nasty_text().map(lambda t: {"type": "text", "text": {"content": t}}),
        st.fixed_dictionaries({"plain_text": _odd_scalar()}),
        st.fixed_dictionaries({"text": st.fixed_dictionaries({"content": _odd_scalar()})}),
        _odd_scalar(),
    )
    return st.one_of(st.lists(element, max_size=4), _odd_scalar())


def _option() -> st.SearchStrategy[Any]:
    """A select or status value: a named option, one without a name, or something else."""
    return st.one_of(
        st.none(),
        st.sampled_from(["Queued", "Draft", "Cancelled", "science", "history", "High", "Low"]).map(
            lambda n: {"id": "opt", "name": n, "color": "default"}
        ),
        st.fixed_dictionaries({"id": st.text(max_size=4)}),
        st.fixed_dictionaries({"name": st.one_of(nasty_text(), _odd_scalar())}),
        _odd_scalar(),
    )


def property_value(kind: str) -> st.SearchStrategy[Any]:
    """The value part of a property object of type `kind`, well or badly shaped."""
    if kind in ("title", "rich_text"):
        return rich_text()
    if kind in ("select", "status"):
        return _option()
    if kind == "date":
        return st.one_of(
            st.none(),
            st.fixed_dictionaries({"start": st.one_of(nasty_text(), st.just("2026-12-03"))}),
            _odd_scalar(),
        )
    if kind in ("people", "relation"):
        return st.one_of(st.lists(st.fixed_dictionaries({"id": _odd_scalar()}), max_size=2))
    return _odd_scalar()


def property_object() -> st.SearchStrategy[dict[str, Any]]:
    """One property object: {"id", "type", <type>: value}, its value possibly of another type."""
    return st.sampled_from(PROPERTY_TYPES).flatmap(
        lambda kind: st.fixed_dictionaries(
            {
                "id": st.text(max_size=3),
                "type": st.just(kind),
                kind: property_value(kind)
                | property_value("number" if kind in ("title", "rich_text") else "rich_text"),
            }
        )
    )


def page_properties() -> st.SearchStrategy[dict[str, Any]]:
    """A calendar page's `properties`: any of its names (and a stranger) with any objects."""
    return st.dictionaries(
        st.sampled_from([*CALENDAR_PROPERTIES, "Extra"]), property_object(), max_size=6
    )


def webhook_bodies() -> st.SearchStrategy[Any]:
    """Webhook bodies: events with odd fields, any JSON, or a wrong shape altogether."""
    event = st.fixed_dictionaries(
        {
            "id": st.one_of(nasty_text(), _odd_scalar()),
            "type": st.one_of(
                st.sampled_from(["page.created", "page.properties_updated", "page.deleted"]),
                nasty_text(),
            ),
        },
        optional={
            "entity": st.one_of(st.fixed_dictionaries({"id": _odd_scalar()}), json_values(4)),
            "authors": st.one_of(
                st.lists(st.fixed_dictionaries({"id": _odd_scalar(), "type": _odd_scalar()})),
                json_values(4),
            ),
            "data": json_values(4),
            "timestamp": _odd_scalar(),
            "subscription_id": _odd_scalar(),
            "workspace_id": _odd_scalar(),
        },
    )
    return st.one_of(event, json_values())
