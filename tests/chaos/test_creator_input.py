"""What the creator puts in Notion, mid-batch: poison entries, and edits racing push-back."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.chaos.harness import Chaos, final_check, shown
from tests.chaos.proxy import (
    Rewrite,
    Sent,
    nameless_channel,
    number_topic,
    rewriting_proxy,
)

pytestmark = pytest.mark.timeout(120)
RACE_S = 2.0
RTL_EMOJI = "שלום עולם 🎬 مرحبا 🌍 "


def text(content: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": content}}]


def entry(title: str, topic: str | list[str] = "A topic") -> dict[str, Any]:
    topics = [topic] if isinstance(topic, str) else topic
    return {
        "Title": {"title": text(title)},
        "Topic": {"rich_text": [part for chunk in topics for part in text(chunk)]},
        "Channel": {"select": {"name": "science"}},
    }


async def create_escaped(chaos: Chaos, properties: dict[str, Any]) -> dict[str, Any]:
    """POST /_sandbox/pages with the body's JSON escaped, so it can carry a lone surrogate."""
    body = json.dumps({"properties": properties}).encode()
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=chaos.sandbox.base_url, trust_env=False) as client:
        answer = await client.post("/_sandbox/pages", content=body, headers=headers)
    answer.raise_for_status()
    page: dict[str, Any] = answer.json()
    return page


async def test_poison_entries_mixed_into_a_batch(chaos: Chaos) -> None:
    long_topic = (RTL_EMOJI * 200)[:2000]
    created = {
        "nul": await chaos.sandbox.create_page(entry("Null\x00in the title")),
        "surrogate": await create_escaped(chaos, entry("Half a pair \ud83d here")),
        "long": await chaos.sandbox.create_page(
            entry("A long topic", [long_topic[:1000], long_topic[1000:]])
        ),
        "number": await chaos.sandbox.create_page(entry("Number topic")),
        "nameless": await chaos.sandbox.create_page(entry("Nameless channel")),
    }
    poison = {name: page["id"] for name, page in created.items()}
    rewrites: dict[str, Rewrite] = {
        poison["number"]: number_topic,
        poison["nameless"]: nameless_channel,
    }
    async with rewriting_proxy(chaos.sandbox.base_url, rewrites) as notion_url:
        chaos.env["NOTION_API_URL"] = notion_url
        run = chaos.start_run(workers=3)
        await asyncio.to_thread(run.wait_found)
        good = [page["id"] for page in await chaos.sandbox.pages()][:12]
        await chaos.queue([*good, *poison.values()])
        either = {"published", "invalid"}
        expected = {
            poison["nul"]: either,
            poison["surrogate"]: either,
            poison["long"]: either,
            poison["number"]: either,
            poison["nameless"]: {"invalid"},
        }
        await final_check(chaos, [*good, *poison.values()], expected)
        await asyncio.to_thread(run.stop)  # while it can still reach Notion, as a person would
    rows = {
        row["notion_page_id"]: row
        for row in await chaos.fetch("SELECT notion_page_id, status, title, topic FROM tasks")
    }
    outcome = {name: (rows[page]["status"], rows[page]["title"]) for name, page in poison.items()}
    print(f"\nchaos: poison entries: {outcome}")
    assert rows[poison["long"]]["topic"] == long_topic.strip()
    notion = {page["id"]: page for page in await chaos.sandbox.pages()}
    _, nameless_log, _ = shown(notion[poison["nameless"]])
    assert "Channel" in nameless_log


@dataclass
class Edit:
    """The creator's last edit of a page's Status or Priority, and when she made it."""

    status: str | None = None
    priority: str | None = None
    made_from: float = 0.0
    made_by: float = 0.0


def written_during(log: list[Sent], page: str, edit: Edit) -> bool:
    """Whether push-back wrote the page while the edit was made or within RACE_S after it:
    Notion has no conditional write, so such a write may land on the creator's edit."""
    return any(
        sent.method == "PATCH"
        and sent.path.endswith(page)
        and edit.made_from <= sent.sent <= edit.made_by + RACE_S
        for sent in log
    )


async def test_creator_edits_racing_push_back_the_last_edit_wins(chaos: Chaos) -> None:
    log: list[Sent] = []
    async with rewriting_proxy(chaos.sandbox.base_url, {}, log) as notion_url:
        chaos.env["NOTION_API_URL"] = notion_url
        run = chaos.start_run(workers=2)
        await asyncio.to_thread(run.wait_found)
        pages = await chaos.queue_batch(16)
        await chaos.mid_batch(results=8)
        rng = random.Random(2026)
        edits = {page: Edit() for page in rng.sample(pages, 10)}

        async def creator(page: str, edit: Edit) -> None:
            for _ in range(rng.choice([1, 2])):
                await asyncio.sleep(rng.uniform(0.0, 1.5))
                choice = rng.choice(["Cancelled", "Draft", "High", "Low"])
                edit.made_from = time.monotonic()
                if choice in ("High", "Low"):
                    await chaos.sandbox.edit([page], {"Priority": {"select": {"name": choice}}})
                    edit.priority = choice
                else:
                    await chaos.sandbox.edit([page], {"Status": {"status": {"name": choice}}})
                    edit.status = choice
                edit.made_by = time.monotonic()

        await asyncio.gather(*(creator(page, edit) for page, edit in edits.items()))
        expected = {
            page: {edit.status.lower(), "published"}
            for page, edit in edits.items()
            if edit.status is not None
        }
        await final_check(chaos, pages, expected)
        lost = await lost_edits(chaos, edits)
        await asyncio.to_thread(run.stop)
    raced = {page for page in lost if written_during(log, page, edits[page])}
    print(f"\nchaos: creator edits lost to a write within {RACE_S} s: {len(raced)} of {len(edits)}")
    assert not {page: why for page, why in lost.items() if page not in raced}


async def lost_edits(chaos: Chaos, edits: dict[str, Edit]) -> dict[str, str]:
    """Pages whose final state is not the creator's last edit, and how."""
    notion = {page["id"]: page for page in await chaos.sandbox.pages()}
    tasks = {
        row["notion_page_id"]: row["status"]
        for row in await chaos.fetch("SELECT notion_page_id, status FROM tasks")
    }
    lost: dict[str, str] = {}
    for page, edit in edits.items():
        label, error_log, _ = shown(notion[page])
        late = f"{edit.status} was set after the video was published" in error_log
        if edit.status is not None and label != edit.status and not late:
            lost[page] = f"wanted {edit.status}, page {label}, task {tasks[page]}"
        priority = (notion[page]["properties"]["Priority"]["select"] or {}).get("name")
        if edit.priority is not None and priority != edit.priority:
            lost[page] = f"wanted priority {edit.priority}, page {priority}"
    return lost
