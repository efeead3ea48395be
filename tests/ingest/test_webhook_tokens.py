"""The token book: a handshake can add a token but never displace an established one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelqueue.ingest.webhook_tokens import (
    MAX_CANDIDATES,
    HandshakeOutcome,
    TokenBook,
    TokenNotFound,
    token_id,
)

TOKENS = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=12)
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("handshake"), TOKENS),
        st.tuples(st.just("deliver"), st.sampled_from(["sub-a", "sub-b", "sub-c"])),
    ),
    max_size=40,
)


def test_the_first_handshake_is_taken_and_later_ones_wait_once_it_verified() -> None:
    book = TokenBook()
    assert book.receive("secret_one", configured=None) is HandshakeOutcome.ACCEPTED
    assert book.receive("secret_two", configured=None) is HandshakeOutcome.ACCEPTED
    assert book.record(token_id("secret_one"), "sub-1", workspace_id="w", workspace_name="W")
    assert book.receive("secret_evil", configured=None) is HandshakeOutcome.CANDIDATE
    assert [t.token for t in book.accepted] == ["secret_one", "secret_two"]
    assert [t.token for t in book.candidates] == ["secret_evil"]
    assert book.receive("secret_evil", configured=None) is HandshakeOutcome.ALREADY_CANDIDATE


def test_a_configured_token_counts_as_established() -> None:
    book = TokenBook()
    assert book.receive("secret_env", configured="secret_env") is HandshakeOutcome.CONFIGURED
    assert book.receive("secret_new", configured="secret_env") is HandshakeOutcome.CANDIDATE
    assert book.accepted == []


def test_accepting_by_id_prefix_makes_a_token_trusted_and_forget_drops_it() -> None:
    book = TokenBook()
    book.receive("secret_one", configured="secret_env")
    chosen = book.accept(token_id("secret_one")[:8])
    assert chosen.accepted
    assert chosen.trusted
    assert chosen.established
    assert book.receive("secret_two", configured=None) is HandshakeOutcome.CANDIDATE
    with pytest.raises(TokenNotFound):
        book.accept("zz-not-an-id")
    with pytest.raises(TokenNotFound):
        book.accept("abcdef123456")
    assert book.forget("secret_two").token == "secret_two"
    assert [t.token for t in book.tokens] == ["secret_one"]


def test_candidates_are_capped_oldest_first() -> None:
    book = TokenBook()
    book.receive("secret_env", configured=None)
    book.accept("secret_env")
    for n in range(MAX_CANDIDATES + 5):
        book.receive(f"secret_{n}", configured=None)
    assert len(book.candidates) == MAX_CANDIDATES
    assert book.candidates[-1].token == f"secret_{MAX_CANDIDATES + 4}"
    assert book.accepted[0].token == "secret_env"


def test_what_is_shown_to_people_hides_a_token_once_it_verified() -> None:
    book = TokenBook()
    book.receive("secret_one", configured=None)
    assert book.tokens[0].describe()["token"] == "secret_one"
    book.record(token_id("secret_one"), "sub-1", workspace_id=None, workspace_name=None)
    shown = book.tokens[0].describe()
    assert shown["token"] is None
    assert shown["subscriptions"][0]["subscription_id"] == "sub-1"


@given(steps=STEPS)
def test_no_handshake_sequence_displaces_an_established_token(
    steps: list[tuple[str, str]],
) -> None:
    book = TokenBook()
    for kind, value in steps:
        established = {t.token for t in book.tokens if t.established}
        if kind == "handshake":
            book.receive(value, configured=None)
        elif book.accepted:
            book.record(book.accepted[-1].id, value, workspace_id=None, workspace_name=None)
        assert established <= {t.token for t in book.accepted}
        assert len({t.token for t in book.tokens}) == len(book.tokens)
        assert TokenBook.from_json(book.to_json()) == book
