"""Schema rules under arbitrary input: select lists replace, status never changes, no 500s.

(Removing the Status property with `null` is allowed, as Notion documents no rule against
it; the status test never sends that.)
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

COLORS = ["default", "gray", "red", "blue", "green", "pink"]
SEEDED = [("A", "red"), ("B", "blue"), ("C", "green")]
NAMES = ["A", "B", "C", "D", "E", "a,b", ""]
TYPES = ["title", "rich_text", "select", "status", "number", "url", "date", "people"]
TYPES += ["checkbox", "formula", "multi_select"]
NOTION_400_CODES = {"validation_error", "invalid_json"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
option_entries = st.one_of(
    st.builds(lambda i: {"ref": i}, st.integers(0, 2)),
    st.builds(lambda i, n: {"ref": i, "name": n}, st.integers(0, 2), st.sampled_from(NAMES)),
    st.builds(lambda i, c: {"ref": i, "color": c}, st.integers(0, 2), st.sampled_from(COLORS)),
    st.fixed_dictionaries(
        {"name": st.sampled_from(NAMES)}, optional={"color": st.sampled_from(COLORS)}
    ),
)
select_configs = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES)},
    optional={"options": st.lists(st.fixed_dictionaries({"name": st.sampled_from(NAMES)}))},
)
property_specs = (
    st.builds(
        lambda kind, config: {kind: config},
        st.sampled_from(TYPES),
        st.one_of(st.just({}), select_configs.map(lambda c: {"options": c.get("options", [])})),
    )
    | json_values
)


def _board(http: httpx.Client, parent_page_id: str) -> tuple[str, list[dict[str, Any]]]:
    """A new database with select Tag (A, B, C) and one page per option: its data source id."""
    options = [{"name": name, "color": color} for name, color in SEEDED]
    answer = http.post(
        "/v1/databases",
        json={
            "parent": {"type": "page_id", "page_id": parent_page_id},
            "initial_data_source": {
                "properties": {"Name": {"title": {}}, "Tag": {"select": {"options": options}}}
            },
        },
    )
    assert answer.status_code == 200, answer.text
    source_id = str(answer.json()["data_sources"][0]["id"])
    for name, _ in SEEDED:
        created = http.post(
            "/v1/pages",
            json={
                "parent": {"data_source_id": source_id},
                "properties": {"Tag": {"select": {"name": name}}},
            },
        )
        assert created.status_code == 200, created.text
    return source_id, _options(http, source_id)


def _options(http: httpx.Client, source_id: str) -> list[dict[str, Any]]:
    return list(
        http.get(f"/v1/data_sources/{source_id}").json()["properties"]["Tag"]["select"]["options"]
    )


def _tags(http: httpx.Client, source_id: str) -> list[str | None]:
    pages = http.post(f"/v1/data_sources/{source_id}/query", json={}).json()["results"]
    return sorted(
        ((p["properties"]["Tag"]["select"] or {}).get("name") for p in pages),
        key=lambda n: (n is None, n or ""),
    )


def _assert_200_or_notion_400(answer: httpx.Response) -> None:
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        assert answer.json()["code"] in NOTION_400_CODES


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(entries=st.lists(option_entries, max_size=5))
def test_a_listed_select_option_list_replaces_the_old_one_or_nothing_changes(
    client: tuple[httpx.Client, dict[str, Any]], entries: list[dict[str, Any]]
) -> None:
    http, info = client
    source_id, before = _board(http, info["parent_page_id"])
    listed = []
    for entry in entries:
        if "ref" in entry:
            option = {"id": before[entry["ref"]]["id"]}
            option.update({k: v for k, v in entry.items() if k != "ref"})
            listed.append(option)
        else:
            listed.append(entry)
    answer = http.patch(
        f"/v1/data_sources/{source_id}",
        json={"properties": {"Tag": {"select": {"options": listed}}}},
    )
    _assert_200_or_notion_400(answer)
    by_id = {o["id"]: o for o in before}
    by_name = {o["name"]: o for o in before}
    changes_existing = any(
        (known := by_id.get(o.get("id", "")) or by_name.get(o.get("name", "")))
        and any(o.get(k, known[k]) != known[k] for k in ("name", "color"))
        for o in listed
    )
    if changes_existing:
        assert answer.status_code == 400
    if answer.status_code == 400:
        assert _options(http, source_id) == before
        assert _tags(http, source_id) == ["A", "B", "C"]
        return
    after = answer.json()["properties"]["Tag"]["select"]["options"]
    names = [by_id[o["id"]]["name"] if "id" in o else o["name"] for o in listed]
    assert [o["name"] for o in after] == names
    for option in after:
        if option["name"] in by_name:
            assert option == by_name[option["name"]]
    expected = [n if n in names else None for n, _ in SEEDED]
    assert _tags(http, source_id) == sorted(expected, key=lambda n: (n is None, n or ""))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    properties=st.dictionaries(
        st.sampled_from(["Name", "Tag", "Stage", "Status", " "]), property_specs, max_size=4
    )
)
def test_new_database_schemas_are_created_as_asked_or_refused(
    client: tuple[httpx.Client, dict[str, Any]], properties: dict[str, Any]
) -> None:
    http, info = client
    answer = http.post(
        "/v1/databases",
        json={
            "parent": {"type": "page_id", "page_id": info["parent_page_id"]},
            "initial_data_source": {"properties": properties},
        },
    )
    _assert_200_or_notion_400(answer)
    if answer.status_code == 200:
        source_id = answer.json()["data_sources"][0]["id"]
        schema = http.get(f"/v1/data_sources/{source_id}").json()["properties"]
        assert set(schema) == set(properties)
        types = [p["type"] for p in schema.values()]
        assert types.count("title") == 1
        assert "status" not in types


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    properties=st.dictionaries(
        st.sampled_from(["Status", "U%60%3BC", "Channel", "Topic", "New", "Title"]),
        property_specs | st.fixed_dictionaries({"name": st.sampled_from(["Stage", "Status", "X"])}),
        max_size=3,
    ).filter(lambda spec: all(spec[k] is not None for k in ("Status", "U%60%3BC") if k in spec))
)
def test_whatever_the_patch_the_status_property_never_changes(
    client: tuple[httpx.Client, dict[str, Any]], properties: dict[str, Any]
) -> None:
    http, info = client
    path = f"/v1/data_sources/{info['data_source_ids'][0]}"
    before = http.get(path).json()["properties"]["Status"]
    _assert_200_or_notion_400(http.patch(path, json={"properties": properties}))
    after = http.get(path).json()["properties"]
    assert after.get("Status") == before


ALL_TYPES: dict[str, Any] = {
    "Name": {"title": {}},
    "Notes": {"rich_text": {}},
    "Stage": {"select": {"options": [{"name": "Idea"}, {"name": "Done"}]}},
    "Score": {"number": {}},
    "Link": {"url": {}},
    "Due": {"date": {}},
    "Owner": {"people": {}},
    "Done": {"checkbox": {}},
}
FILTER_KINDS = [next(iter(spec)) for spec in ALL_TYPES.values()]
OPERATORS = ["equals", "contains", "does_not_contain", "is_empty", "after", "greater_than"]
operands = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(["Idea", "2026-06-27", "", "00000000-0000-4000-8000-000000000001"]),
)
query_bodies = st.fixed_dictionaries(
    {},
    optional={
        "filter": st.builds(
            lambda prop, kind, op, value: {"property": prop, kind: {op: value}},
            st.sampled_from(list(ALL_TYPES)),
            st.sampled_from(FILTER_KINDS),
            st.sampled_from(OPERATORS),
            operands,
        ),
        "sorts": st.lists(
            st.builds(
                lambda prop, way: {"property": prop, "direction": way},
                st.sampled_from(list(ALL_TYPES)),
                st.sampled_from(["ascending", "descending"]),
            ),
            max_size=2,
        ),
        "in_trash": st.booleans(),
    },
)


@pytest.fixture(scope="module")
def every_type(client: tuple[httpx.Client, dict[str, Any]]) -> str:
    """A new database with a property of every creatable type and a few filled pages."""
    http, info = client
    answer = http.post(
        "/v1/databases",
        json={
            "parent": {"type": "page_id", "page_id": info["parent_page_id"]},
            "initial_data_source": {"properties": ALL_TYPES},
        },
    )
    source_id = str(answer.json()["data_sources"][0]["id"])
    for n in range(3):
        values: dict[str, Any] = {
            "Name": {"title": [{"text": {"content": f"row {n}"}}]},
            "Score": {"number": n},
            "Done": {"checkbox": n % 2 == 0},
        }
        if n:
            values["Owner"] = {"people": [{"id": info["person_user_id"]}]}
            values["Stage"] = {"select": {"name": "Idea"}}
            values["Due"] = {"date": {"start": f"2026-06-2{n}"}}
        created = http.post(
            "/v1/pages", json={"parent": {"data_source_id": source_id}, "properties": values}
        )
        assert created.status_code == 200, created.text
    return source_id


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=query_bodies)
def test_queries_on_every_property_type_answer_200_or_a_notion_400(
    client: tuple[httpx.Client, dict[str, Any]], every_type: str, body: dict[str, Any]
) -> None:
    http, _ = client
    _assert_200_or_notion_400(http.post(f"/v1/data_sources/{every_type}/query", json=body))
