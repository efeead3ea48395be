"""Whatever is sent to the query and page endpoints, the answer is a 200 or a Notion 400."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PROPERTIES = [
    "Title",
    "Channel",
    "Topic",
    "Status",
    "Priority",
    "Error Log",
    "YouTube URL",
    "Updated",
    "title",
    "Nope",
]
FILTER_TYPES = ["title", "rich_text", "select", "status", "checkbox", "number", "date", "url"]
OPERATORS = [
    "equals",
    "does_not_equal",
    "contains",
    "starts_with",
    "is_empty",
    "is_not_empty",
    "before",
    "after",
    "on_or_after",
    "past_week",
    "greater_than",
    "near",
]
NOTION_400_CODES = {"validation_error", "invalid_json"}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
operands = st.one_of(
    json_values, st.sampled_from(["Queued", "2026-06-27", "2026-06-27T17:00:00Z", "", "science"])
)
conditions = (
    st.builds(lambda op, value: {op: value}, st.sampled_from(OPERATORS), operands) | json_values
)
property_filters = st.builds(
    lambda prop, kind, condition: {"property": prop, kind: condition},
    st.sampled_from(PROPERTIES),
    st.sampled_from(FILTER_TYPES),
    conditions,
)
timestamp_filters = st.builds(
    lambda name, condition: {"timestamp": name, name: condition},
    st.sampled_from(["created_time", "last_edited_time", "edited"]),
    conditions,
)
filters = st.recursive(
    property_filters | timestamp_filters | json_values,
    lambda children: st.builds(
        lambda key, parts: {key: parts},
        st.sampled_from(["and", "or"]),
        st.lists(children, max_size=3),
    ),
    max_leaves=5,
)
query_bodies = st.fixed_dictionaries(
    {},
    optional={
        "filter": filters,
        "sorts": st.lists(
            st.fixed_dictionaries(
                {"property": st.sampled_from(PROPERTIES)},
                optional={"direction": st.sampled_from(["ascending", "descending", "up"])},
            ),
            max_size=2,
        )
        | json_values,
        "page_size": st.integers(-5, 150) | json_values,
        "start_cursor": st.text(max_size=5) | st.none(),
    },
)
value_shapes = st.sampled_from(
    ["title", "rich_text", "select", "status", "date", "url", "number", "checkbox"]
)
property_values = (
    st.builds(
        lambda kind, value: {kind: value},
        value_shapes,
        st.one_of(
            json_values,
            st.lists(
                st.fixed_dictionaries({"text": st.fixed_dictionaries({"content": st.text()})})
            ),
            st.fixed_dictionaries({"name": st.sampled_from(["Queued", "High", "new", "x" * 120])}),
            st.fixed_dictionaries(
                {"start": st.sampled_from(["2026-06-27", "bad", "2026-06-27T10:00"])}
            ),
        ),
    )
    | json_values
)
patch_bodies = (
    st.fixed_dictionaries(
        {"properties": st.dictionaries(st.sampled_from(PROPERTIES), property_values, max_size=3)},
        optional={"in_trash": st.booleans() | json_values, "icon": json_values},
    )
    | json_values
)


@pytest.fixture(scope="module")
def bodies(client: tuple[httpx.Client, dict[str, Any]]) -> tuple[httpx.Client, dict[str, str]]:
    """The sandbox's client with the ids the bodies need."""
    http, info = client
    page_id = http.get("/_sandbox/pages").json()["pages"][0]["id"]
    return http, {"data_source_id": info["data_source_ids"][0], "page_id": page_id}


def _assert_200_or_notion_400(answer: httpx.Response) -> None:
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        body = answer.json()
        assert body["object"] == "error"
        assert body["code"] in NOTION_400_CODES
        assert isinstance(body["message"], str)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=query_bodies)
def test_query_bodies_never_cause_a_server_error(
    bodies: tuple[httpx.Client, dict[str, str]], body: dict[str, Any]
) -> None:
    http, ids = bodies
    _assert_200_or_notion_400(
        http.post(f"/v1/data_sources/{ids['data_source_id']}/query", json=body)
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=patch_bodies)
def test_page_patches_never_cause_a_server_error(
    bodies: tuple[httpx.Client, dict[str, str]], body: Any
) -> None:
    http, ids = bodies
    _assert_200_or_notion_400(http.patch(f"/v1/pages/{ids['page_id']}", json=body))
    http.patch(f"/v1/pages/{ids['page_id']}", json={"in_trash": False})


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=40) | st.sampled_from([b'{"page_size": NaN}', b"[]", b"null"]))
def test_any_bytes_are_answered_as_notion_would(
    bodies: tuple[httpx.Client, dict[str, str]], raw: bytes
) -> None:
    http, ids = bodies
    _assert_200_or_notion_400(
        http.post(f"/v1/data_sources/{ids['data_source_id']}/query", content=raw)
    )
