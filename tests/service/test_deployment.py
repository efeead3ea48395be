"""A second deployment on the same calendar is refused at start-up, against the sandbox.

Each deployment here has its own real PostgreSQL database (so its own deployment id), as two
installations would; they meet only in the description of the sandbox's Notion database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.config import Channels
from reelqueue.db import create_engine
from reelqueue.errors import UserError
from reelqueue.notion import NotionClient, plain_text
from reelqueue.sandbox import SandboxAdmin
from reelqueue.service.deployment import (
    DeploymentClaim,
    DeploymentConflict,
    DeploymentMarker,
    claim_deployment,
    parse_markers,
)
from tests.fixtures.sandbox import SANDBOX_DEFAULTS
from tests.fixtures.service import until

BOTH = Channels.model_validate(
    {"channels": [{"id": "science", "name": "S"}, {"id": "history", "name": "H"}]}
)
SCIENCE = Channels.model_validate({"channels": [{"id": "science", "name": "S"}]})
HISTORY = Channels.model_validate({"channels": [{"id": "history", "name": "H"}]})
SETTLE_S = 0.3


@pytest.fixture
async def other_engine(other_database_url: str) -> AsyncIterator[AsyncEngine]:
    """The second deployment's own migrated database."""
    engine = create_engine(other_database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def notion(sandbox: SandboxAdmin) -> AsyncIterator[NotionClient]:
    await sandbox.reset(**(SANDBOX_DEFAULTS | {"rps": 1000.0, "burst": 1000}))
    fast: dict[str, Any] = {"rate_limit": 100.0, "burst": 100}
    async with NotionClient(sandbox.token, base_url=sandbox.base_url, **fast) as client:
        yield client


async def description(notion: NotionClient, sandbox: SandboxAdmin) -> str:
    found = await notion.retrieve_database(sandbox.database_id)
    return plain_text(found["description"])


async def claim(
    notion: NotionClient,
    engine: AsyncEngine,
    sandbox: SandboxAdmin,
    channels: Channels,
    *,
    allow: bool = False,
) -> DeploymentClaim:
    return await claim_deployment(
        notion,
        engine,
        [sandbox.database_id],
        channels,
        allow_others=allow,
        settle_s=SETTLE_S,
    )


async def set_description(notion: NotionClient, sandbox: SandboxAdmin, text: str) -> None:
    """The person edits the database's description."""
    description = [{"type": "text", "text": {"content": text}}]
    await notion.update_database_description(sandbox.database_id, description)


async def test_overlapping_channels_are_refused_even_when_allowed(
    sandbox: SandboxAdmin, notion: NotionClient, engine: AsyncEngine, other_engine: AsyncEngine
) -> None:
    await set_description(notion, sandbox, "Our content calendar.")
    first = await claim(notion, engine, sandbox, BOTH)
    with pytest.raises(DeploymentConflict) as caught:
        await claim(notion, other_engine, sandbox, SCIENCE, allow=True)
    message = str(caught.value)
    assert message.startswith(f"database {sandbox.database_id} is driven by another reelqueue ")
    assert f"driven by another reelqueue deployment {first.deployment_id} on " in message
    assert "both would take channel science, running the same videos twice" in message
    assert "delete its line from the database's description in Notion" in message
    assert "\n" not in message
    assert sandbox.token not in message
    text = await description(notion, sandbox)
    assert text.startswith("Our content calendar.\n")
    assert [m.deployment_id for m in parse_markers(text)] == [first.deployment_id]
    source = await notion.retrieve_data_source(sandbox.data_source_id)
    assert source["description"] == [], "the line is in the database's description only"


async def test_disjoint_channels_need_the_setting_and_then_run_side_by_side(
    sandbox: SandboxAdmin, notion: NotionClient, engine: AsyncEngine, other_engine: AsyncEngine
) -> None:
    first = await claim(notion, engine, sandbox, SCIENCE)
    with pytest.raises(DeploymentConflict) as caught:
        await claim(notion, other_engine, sandbox, HISTORY)
    assert "set REELQUEUE_ALLOW_OTHER_DEPLOYMENTS=true to run both" in str(caught.value)
    second = await claim(notion, other_engine, sandbox, HISTORY, allow=True)
    assert second.foreign_channels == {"science"}, "its ingest must leave science pages alone"
    markers = {
        m.deployment_id: m.channels for m in parse_markers(await description(notion, sandbox))
    }
    assert markers == {
        first.deployment_id: frozenset({"science"}),
        second.deployment_id: frozenset({"history"}),
    }


async def test_another_process_of_the_same_deployment_starts_and_a_clean_stop_frees_it(
    sandbox: SandboxAdmin, notion: NotionClient, engine: AsyncEngine, other_engine: AsyncEngine
) -> None:
    first = await claim(notion, engine, sandbox, BOTH)
    standby = await claim(notion, engine, sandbox, BOTH)
    assert standby.deployment_id == first.deployment_id
    await first.release()
    assert parse_markers(await description(notion, sandbox)) == []
    await claim(notion, other_engine, sandbox, BOTH)


async def test_a_stale_line_is_ignored_and_dropped(
    sandbox: SandboxAdmin, notion: NotionClient, engine: AsyncEngine
) -> None:
    gone = DeploymentMarker(
        "0123456789ab", "old-box", frozenset({"science"}), datetime.now(UTC) - timedelta(hours=1)
    )
    await set_description(notion, sandbox, "Calendar.\n" + gone.text())
    ours = await claim(notion, engine, sandbox, BOTH)
    text = await description(notion, sandbox)
    assert [m.deployment_id for m in parse_markers(text)] == [ours.deployment_id]
    assert text.startswith("Calendar.\n")


async def test_of_two_deployments_starting_at_once_one_is_refused(
    sandbox: SandboxAdmin, notion: NotionClient, engine: AsyncEngine, other_engine: AsyncEngine
) -> None:
    results = await asyncio.gather(
        claim(notion, engine, sandbox, BOTH),
        claim(notion, other_engine, sandbox, BOTH),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, DeploymentConflict)]
    started = [r for r in results if isinstance(r, DeploymentClaim)]
    assert len(refused) == 1, results
    assert len(started) == 1, results
    marked = [m.deployment_id for m in parse_markers(await description(notion, sandbox))]
    assert marked == [started[0].deployment_id]


async def test_the_leader_keeps_the_line_alive_and_removes_it_when_stopped(
    sandbox: SandboxAdmin, notion: NotionClient, engine: AsyncEngine
) -> None:
    ours = await claim(notion, engine, sandbox, BOTH)
    await set_description(notion, sandbox, "Edited by a person.")
    ours.heartbeat_s = 0.2
    stop = asyncio.Event()
    running = asyncio.create_task(ours.run(stop, lambda: True))

    async def marked() -> bool:
        return bool(parse_markers(await description(notion, sandbox)))

    await until(marked, within_s=10, every_s=0.1)
    assert (await description(notion, sandbox)).startswith("Edited by a person.\n")
    stop.set()
    await running
    assert await description(notion, sandbox) == "Edited by a person."


channel_ids = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and s)


@given(
    deployment=st.text("0123456789abcdef", min_size=12, max_size=12),
    host=st.from_regex(r"[A-Za-z0-9.-]{1,64}", fullmatch=True),
    channels=st.frozensets(channel_ids, max_size=5),
    seconds=st.integers(0, 10**9),
    before=st.text(max_size=50),
    after=st.text(max_size=50),
)
def test_a_marker_reads_back_from_any_description(
    deployment: str, host: str, channels: frozenset[str], seconds: int, before: str, after: str
) -> None:
    at = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    marker = DeploymentMarker(deployment, host, channels, at)
    assert marker in parse_markers(f"{before}\n{marker.text()}\n{after}")


async def test_a_standby_neither_writes_nor_removes_the_line(
    sandbox: SandboxAdmin, notion: NotionClient, engine: AsyncEngine
) -> None:
    leader = await claim(notion, engine, sandbox, BOTH)
    standby = await claim(notion, engine, sandbox, BOTH)
    standby.heartbeat_s = 0.05
    await set_description(notion, sandbox, "Edited by a person.")
    stop = asyncio.Event()
    asked = 0
    rounds_done = asyncio.Event()

    def not_leading() -> bool:
        nonlocal asked
        asked += 1
        if asked > 3:  # three rounds are over: time enough for a leader to have beaten
            rounds_done.set()
        return False

    running = asyncio.create_task(standby.run(stop, not_leading))
    await asyncio.wait_for(rounds_done.wait(), 10)
    assert await description(notion, sandbox) == "Edited by a person.", "the standby wrote"
    await leader.heartbeat()
    stop.set()
    await running
    assert [m.deployment_id for m in parse_markers(await description(notion, sandbox))] == [
        leader.deployment_id
    ], "the standby removed the leader's line at its stop"


async def test_a_database_it_cannot_read_is_one_line(
    notion: NotionClient, engine: AsyncEngine
) -> None:
    missing = "0000000000004000800000000000dead"
    with pytest.raises(UserError) as caught:
        await claim_deployment(notion, engine, [missing], BOTH, allow_others=False, settle_s=0)
    message = str(caught.value)
    assert message.startswith("database 00000000-0000-4000-8000-00000000dead: ")
    assert "\n" not in message
