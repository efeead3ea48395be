"""Supervised loops: any failure is counted and retried with capped backoff; cancel still stops."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelqueue.queue.supervise import (
    BACKOFF_CAP_S,
    LoopHealth,
    attempt,
    combined,
    describe_error,
    supervise,
)

PASSWORDS = st.text(
    alphabet=st.characters(blacklist_characters="@/", blacklist_categories=("Cs",)),
    min_size=4,
    max_size=30,
)


@given(password=PASSWORDS, prefix=st.text(st.characters(categories=("L", "N", "Zs")), max_size=40))
def test_an_error_never_shows_a_password_of_a_url_it_quotes(password: str, prefix: str) -> None:
    error = OSError(f"{prefix} cannot reach postgresql://reel:{password}@db.example:5432/rq")
    shown = describe_error(error)
    assert shown.startswith("OSError: ")
    assert shown.endswith(" cannot reach postgresql://reel:***@db.example:5432/rq")


def test_an_error_shows_its_type_and_first_line_only() -> None:
    shown = describe_error(RuntimeError("connection is closed\n[SQL: SELECT secret_stuff]"))
    assert shown == "RuntimeError: connection is closed"
    assert describe_error(KeyError()) == "KeyError"


def test_backoff_doubles_per_failure_in_a_row_up_to_the_cap_and_a_success_resets_it() -> None:
    health = LoopHealth("loop")
    assert health.backoff_s() == 0.0
    delays = []
    for _ in range(8):
        health.failed(OSError("down"))
        delays.append(health.backoff_s())
    assert delays[1] > delays[0]
    assert max(delays) <= BACKOFF_CAP_S
    assert delays[-1] >= 0.8 * BACKOFF_CAP_S
    assert (health.state, health.failures, health.last_error) == ("failing", 8, "OSError: down")
    health.ok()
    assert (health.state, health.streak, health.backoff_s()) == ("ok", 0, 0.0)
    assert health.failures == 8, "failures are counted for good"


async def test_a_supervised_loop_survives_any_exception_and_goes_on() -> None:
    health = LoopHealth("flaky")
    runs = 0

    async def body() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise ValueError(f"bug number {runs}")
        health.ok()

    await asyncio.wait_for(supervise(health, body), 5)
    assert runs == 3
    assert health.failures == 2
    assert health.state == "ok"
    assert health.last_error == "ValueError: bug number 2"


async def test_cancelling_a_supervised_loop_stops_it_at_once() -> None:
    health = LoopHealth("forever")
    started = asyncio.Event()

    async def body() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(supervise(health, body))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert health.failures == 0


async def test_a_failed_pass_says_so_and_a_later_one_clears_it() -> None:
    health = LoopHealth("pass")

    async def fails() -> None:
        raise OSError("refused")

    async def works() -> None:
        return None

    assert not await attempt(health, fails)
    assert health.state == "failing"
    assert await attempt(health, works)
    assert health.state == "ok"


def test_a_role_of_several_loops_fails_when_any_of_them_fails() -> None:
    claims, beats, idle = LoopHealth("claims"), LoopHealth("beats"), LoopHealth("idle")
    claims.ok()
    beats.failed(OSError("gone"))
    role = combined("workers", [claims, beats, idle])
    assert (role.state, role.failures, role.last_error) == ("failing", 1, "OSError: gone")
    beats.ok()
    assert combined("workers", [claims, beats, idle]).state == "ok"
