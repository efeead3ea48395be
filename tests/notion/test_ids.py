"""normalize_id: every spelling of a Notion id becomes one dashed lowercase UUID."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelqueue.errors import UserError
from reelqueue.notion import InvalidNotionId, normalize_id

SPELLINGS = st.sampled_from(
    [
        lambda u: str(u),
        lambda u: u.hex,
        lambda u: str(u).upper(),
        lambda u: u.hex.upper(),
        lambda u: f"  {u}\n",
        lambda u: f"https://www.notion.so/workspace/Content-Calendar-{u.hex}?v={uuid.uuid4().hex}",
        lambda u: f"https://notion.so/{u.hex}",
        lambda u: f"www.notion.so/ws/Title-{u.hex}",
        lambda u: f"https://acme.notion.site/Roadmap-{u.hex.upper()}?pvs=4",
        lambda u: f"https://www.notion.so/ws/{u}/",
        lambda u: f"https://www.notion.so/ws?p={u.hex}&pm=s",
    ]
)


@given(st.uuids(), SPELLINGS)
def test_any_spelling_of_a_uuid_normalises_to_the_dashed_lowercase_form(
    value: uuid.UUID, spell: object
) -> None:
    assert callable(spell)
    assert normalize_id(spell(value)) == str(value)


def test_a_database_url_yields_the_database_not_its_view() -> None:
    database, view = uuid.uuid4(), uuid.uuid4()
    url = f"https://www.notion.so/acme/Calendar-{database.hex}?v={view.hex}"
    assert normalize_id(url) == str(database)


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "",
        "   ",
        "0123456789abcdef0123456789abcdeg",
        "0123456789abcdef0123456789abcdef0",
        "https://example.com/Title-0123456789abcdef0123456789abcdef",
        "https://www.notion.so/workspace/no-id-here",
        None,
        42,
        ["0123456789abcdef0123456789abcdef"],
    ],
)
def test_garbage_raises_a_user_error_naming_the_value_and_the_expected_form(
    value: object,
) -> None:
    with pytest.raises(InvalidNotionId) as caught:
        normalize_id(value)
    message = str(caught.value)
    assert isinstance(caught.value, UserError)
    assert repr(value)[:20] in message
    assert "expected 32 hexadecimal characters (with or without dashes) or a Notion URL" in message


@given(st.text(max_size=80))
def test_any_text_either_normalises_to_a_uuid_or_raises_invalid_notion_id(text: str) -> None:
    try:
        result = normalize_id(text)
    except InvalidNotionId:
        return
    assert str(uuid.UUID(result)) == result


def test_a_token_given_as_an_id_is_not_echoed() -> None:
    with pytest.raises(InvalidNotionId) as caught:
        normalize_id("secret_abcdefghijklmnopqrstuvwxyz0123456789")
    assert "secret_" not in str(caught.value)
    assert "looks like an integration token" in str(caught.value)


def test_a_long_value_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidNotionId) as caught:
        normalize_id("x" * 500)
    assert len(str(caught.value)) < 300
