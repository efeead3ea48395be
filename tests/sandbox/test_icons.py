"""Icons written through PATCH /v1/data_sources/{id}: Notion's shapes stored, others refused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reelqueue.sandbox.icons import is_emoji

EMOJIS = [
    "🎬",
    "⭐",
    "❤️",
    "👍🏽",
    "👩‍👩‍👧‍👦",
    "🇯🇵",
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    "#️⃣",
    "1⃣",
    "☕",
    "©️",
]
UUID = "5e1b8a5c-3c5e-4a0e-9a43-6f0c2d1f7b9a"
STAR = "⭐"


@pytest.fixture(scope="module")
def source(client: tuple[httpx.Client, dict[str, Any]]) -> tuple[httpx.Client, str]:
    """The client and the path of the calendar's data source."""
    http, info = client
    return http, f"/v1/data_sources/{info['data_source_ids'][0]}"


def _icon(http: httpx.Client, path: str) -> Any:
    return http.get(path).json()["icon"]


def _replace_star(http: httpx.Client, path: str, icon: Any) -> httpx.Response:
    """Give the data source a star icon, then PATCH `icon` over it."""
    http.patch(path, json={"icon": {"emoji": STAR}})
    return http.patch(path, json={"icon": icon})


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        pytest.param(
            {"type": "emoji", "emoji": "🎬"}, {"type": "emoji", "emoji": "🎬"}, id="emoji"
        ),
        pytest.param({"emoji": "🎬"}, {"type": "emoji", "emoji": "🎬"}, id="emoji, type implied"),
        pytest.param(
            {"external": {"url": "https://example.com/i.png"}},
            {"type": "external", "external": {"url": "https://example.com/i.png"}},
            id="external",
        ),
        pytest.param(
            {"type": "icon", "icon": {"name": "video", "color": "red"}},
            {"type": "icon", "icon": {"name": "video", "color": "red"}},
            id="native icon",
        ),
        pytest.param(
            {"icon": {"name": "video"}},
            {"type": "icon", "icon": {"name": "video", "color": "gray"}},
            id="native icon, default color",
        ),
        pytest.param(None, None, id="removed"),
    ],
)
def test_a_written_icon_is_answered_and_kept_in_notions_shape(
    source: tuple[httpx.Client, str], sent: Any, stored: Any
) -> None:
    http, path = source
    answer = _replace_star(http, path, sent)
    assert answer.status_code == 200, answer.text
    assert answer.json()["icon"] == stored
    assert _icon(http, path) == stored


@pytest.mark.parametrize(
    ("sent", "says"),
    [
        pytest.param(
            {"type": "custom_emoji", "custom_emoji": {"id": UUID}},
            "does not model custom emojis",
            id="custom emoji",
        ),
        pytest.param(
            {"type": "file_upload", "file_upload": {"id": UUID}},
            "does not model file uploads",
            id="file upload",
        ),
        pytest.param(
            {"type": "file", "file": {"url": "https://example.com/i.png"}},
            "body.icon should be an object with `type` one of",
            id="file (read only)",
        ),
        pytest.param(
            {"type": "emoji", "emoji": "x"}, "body.icon.emoji should be one emoji", id="x"
        ),
        pytest.param(
            {"external": {"url": "not a url"}}, "body.icon.external.url should be", id="bad url"
        ),
        pytest.param(
            {"icon": {"name": "video", "color": "teal"}}, "body.icon.icon.color", id="bad color"
        ),
        pytest.param(
            {"emoji": "🎬", "external": {"url": "https://example.com/i.png"}},
            "body.icon should be an object with `type` one of",
            id="two types",
        ),
        pytest.param("🎬", "body.icon should be an object or `null`", id="a bare string"),
    ],
)
def test_an_icon_the_sandbox_cannot_store_is_a_validation_error_and_changes_nothing(
    source: tuple[httpx.Client, str], sent: Any, says: str
) -> None:
    http, path = source
    answer = _replace_star(http, path, sent)
    assert (answer.status_code, answer.json()["code"]) == (400, "validation_error")
    assert says in answer.json()["message"]
    assert _icon(http, path) == {"type": "emoji", "emoji": STAR}


def test_a_data_source_icon_is_its_databases_icon(source: tuple[httpx.Client, str]) -> None:
    http, path = source
    http.patch(path, json={"icon": {"emoji": "🎬"}})
    database_id = http.get(path).json()["parent"]["database_id"]
    database = http.get(f"/v1/databases/{database_id}").json()
    assert database["icon"] == {"type": "emoji", "emoji": "🎬"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(emoji=st.sampled_from(EMOJIS))
def test_any_emoji_is_kept_as_sent(source: tuple[httpx.Client, str], emoji: str) -> None:
    http, path = source
    answer = http.patch(path, json={"icon": {"type": "emoji", "emoji": emoji}})
    assert answer.status_code == 200, answer.text
    assert _icon(http, path) == {"type": "emoji", "emoji": emoji}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(min_size=1).filter(lambda t: any(c.isascii() and c.isalpha() for c in t)))
def test_text_with_a_letter_is_not_an_emoji(source: tuple[httpx.Client, str], text: str) -> None:
    http, path = source
    answer = _replace_star(http, path, {"emoji": text})
    assert (answer.status_code, answer.json()["code"]) == (400, "validation_error")
    assert _icon(http, path) == {"type": "emoji", "emoji": STAR}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
icon_like = st.one_of(
    json_values,
    st.builds(
        lambda kind, value, typed: {"type": kind, kind: value} if typed else {kind: value},
        st.sampled_from(["emoji", "external", "icon", "custom_emoji", "file_upload", "file"]),
        json_values
        | st.sampled_from(EMOJIS)
        | st.fixed_dictionaries(
            {},
            optional={
                "url": st.sampled_from(["https://example.com/a.png", "ftp://x", ""]) | json_values,
                "name": st.text(max_size=8) | json_values,
                "color": st.sampled_from(["red", "gray", "teal"]) | json_values,
                "id": st.sampled_from([UUID, "nope"]) | json_values,
            },
        ),
        st.booleans(),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(icon=icon_like)
def test_any_icon_is_stored_in_notions_shape_or_refused_without_a_change(
    source: tuple[httpx.Client, str], icon: Any
) -> None:
    http, path = source
    before = _icon(http, path)
    answer = http.patch(path, json={"icon": icon})
    assert answer.status_code in (200, 400), answer.text
    after = _icon(http, path)
    if answer.status_code == 400:
        assert answer.json()["code"] == "validation_error"
        assert after == before
        return
    assert after == answer.json()["icon"]
    assert after is None or after["type"] in ("emoji", "external", "icon")
    assert after is None or set(after) == {"type", after["type"]}


@pytest.mark.parametrize("text", EMOJIS)
def test_the_emoji_check_takes_every_sample(text: str) -> None:
    assert is_emoji(text)


@pytest.mark.parametrize("text", ["", "a", "🎬a", "1", "‍", "️", " 🎬", "🎬🎬", "🇯🇵🇯", "🎬" * 17])
def test_the_emoji_check_refuses_what_is_not_one(text: str) -> None:
    assert not is_emoji(text)


def test_pages_and_databases_take_icons_by_the_same_rules(
    client: tuple[httpx.Client, dict[str, Any]],
) -> None:
    http, info = client
    page_id = http.get("/_sandbox/pages").json()["pages"][0]["id"]
    page = http.patch(f"/v1/pages/{page_id}", json={"icon": {"emoji": "🎬"}})
    assert page.json()["icon"] == {"type": "emoji", "emoji": "🎬"}
    refused = http.patch(f"/v1/pages/{page_id}", json={"icon": {"emoji": "no"}})
    assert (refused.status_code, refused.json()["code"]) == (400, "validation_error")
    created = http.post(
        "/v1/databases",
        json={
            "parent": {"type": "page_id", "page_id": info["parent_page_id"]},
            "icon": {"type": "custom_emoji", "custom_emoji": {"id": UUID}},
        },
    )
    assert (created.status_code, created.json()["code"]) == (400, "validation_error")
    assert "does not model custom emojis" in created.json()["message"]
