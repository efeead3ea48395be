"""The peak count read from history: a transaction's moves land together, breaches show."""

from __future__ import annotations

from reelqueue.statuses import StatusTable
from tests.pipeline.peaks import Move, peaks

TABLE = StatusTable()


def channel(move: Move, status: str) -> str | None:
    return move.channel if status in TABLE.running else None


def claim(tx: str, channel: str = "science") -> Move:
    return Move(tx, channel, "queued", "generating_assets")


def finish(tx: str, channel: str = "science") -> Move:
    return Move(tx, channel, "generating_assets", "assets_ready")


def test_a_finish_and_a_claim_in_one_exchange_never_count_twice() -> None:
    for exchange in ([finish("2"), claim("2")], [claim("2"), finish("2")]):
        history = [claim("1"), claim("1"), *exchange, finish("3"), finish("3")]
        assert peaks(history, channel) == {"science": 2}


def test_a_brief_breach_between_two_transactions_shows() -> None:
    history = [claim("1"), claim("1"), claim("2"), finish("3"), finish("3"), finish("4")]
    assert peaks(history, channel) == {"science": 3}


def test_channels_and_steps_are_counted_apart() -> None:
    composites = Move("3", "history", "assets_approved", "generating_composites")
    history = [claim("1"), claim("2", "history"), composites]
    assert peaks(history, channel) == {"science": 1, "history": 2}

    def step(_: Move, status: str) -> str | None:
        return TABLE[status].step if status in TABLE.running else None

    assert peaks(history, step) == {"assets": 2, "composites": 1}
