"""Benchmark: a creator's edit made within a minute of reelqueue's own write, to the reaction.

Notion combines a page's property edits made within a minute of an earlier edit of that
page (ours included) into one webhook sent when that minute ends, so such an edit can
reach reelqueue's webhook up to a minute late; the coordinator reads "hot" pages every
few seconds to see it sooner. Against the sandbox with Notion-like latency (150-450 ms,
median 300 ms) and Notion's own 60-s webhook window, once per rate model (3 requests/s
bucket, then 180 requests per 60-s window), with the service's default limiter settings:

- the creator first leaves the calendar quiet (ingest requests per second when quiet);
- then queues the trial pages: on one channel every gate waits for a person, so its
  pages stop at Assets Ready; the other auto-approves and its pages reach Published;
- each trial starts when reelqueue's write of Assets Ready or Published shows on its
  page: 2-45 s later (drawn at random, so within a minute of that write) the creator
  approves (Assets Approved) or cancels a waiting page, or re-queues a published one;
- the reaction is the task's history row for it (approved, cancelled, re-queued), timed
  against the moment of the edit.

A second webhook subscription to this benchmark's own receiver records when Notion's
event for each edit arrived, showing the delay the reaction did not have to wait for.
Ingest's share of the budget counts every request but page writes, by when it reached the
sandbox (a request log around the sandbox app); push-back's fresh reads are counted by
wrapping the coordinator's `fresh_read` in this process.

    .venv/bin/python -m bench.follow_up [--trials 12] [--quiet-s 30]
        [--models bucket,window,window+budget]

`--models window+budget` runs the window model with the budget configured in the client
(`NOTION_RATE_BUDGET=180`, `NOTION_RATE_WINDOW_S=60`), as on today's Notion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.notion_like import (
    BUDGET_PER_S,
    LATENCY_MS,
    Database,
    Request,
    between,
    client_settings,
    code_version,
    count_fresh_reads,
    counts,
    percentiles,
    quiet_logs,
    sandbox,
    start_service,
    status_name,
    until,
)
from reelqueue.config import Channel, Channels
from reelqueue.db import start_embedded_server
from reelqueue.logs import configure_logging
from reelqueue.sandbox import SandboxAdmin

WAITING, AUTO = "science", "history"
CHANNELS = Channels(
    channels=(
        Channel(id=WAITING, name="Science Explained", max_concurrent=5),
        Channel(
            id=AUTO,
            name="History Retold",
            max_concurrent=5,
            auto_approve=("assets", "video", "audio", "final"),
        ),
    )
)
# kind: (channel, label our write shows, label the creator sets, history row of the reaction)
KINDS: dict[str, tuple[str, str, str, tuple[str | None, str]]] = {
    "approval": (WAITING, "Assets Ready", "Assets Approved", ("assets_ready", "assets_approved")),
    "cancel": (WAITING, "Assets Ready", "Cancelled", (None, "cancelled")),
    "requeue": (AUTO, "Published", "Queued", ("published", "queued")),
}
DELAY_S = (2.0, 45.0)
# After the last edit, how long to wait for Notion's (combined) events to arrive.
WEBHOOK_WAIT_S = 62.0


@dataclass
class Trial:
    """One page: when our write showed, when the creator edited, when reelqueue reacted."""

    page: str
    kind: str
    delay_s: float
    written: float | None = None
    edited: float | None = None
    edited_wall: datetime | None = None
    reacted_s: float | None = None
    webhook_s: float | None = None
    done: bool = False
    events: list[float] = field(default_factory=list)


class EventReceiver:
    """A second webhook subscriber on 127.0.0.1: when each page's events arrived."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str, list[str]]] = []
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.url = ""

    async def _receive(self, request: HttpRequest) -> JSONResponse:
        body = await request.json()
        if "verification_token" not in body:
            entity = str((body.get("entity") or {}).get("id", "")).replace("-", "")
            authors = [str(a.get("type")) for a in body.get("authors") or []]
            self.arrivals.append((time.monotonic(), entity, authors))
        return JSONResponse({})

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/events"
        app = Starlette(routes=[Route("/events", self._receive, methods=["POST"])])
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        )
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        for _ in range(1000):
            if self._server.started:
                return
            await asyncio.sleep(0.01)
        raise RuntimeError("the event receiver did not start")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task


def ingest_share(
    entries: list[Request], start: float, end: float, fresh_reads: list[float]
) -> dict[str, Any]:
    """Requests per second in [start, end) as shares of the budget, ingest and push apart.

    Ingest is every request but page writes; `fresh_reads` (push-back's reads before its
    writes, one query each) are counted within ingest and also shown apart.
    """
    span = max(end - start, 1e-9)
    seen = between(entries, start, end)
    ingest = sum(1 for e in seen if e.kind == "ingest" and e.status != 429)
    push = sum(1 for e in seen if e.kind == "push" and e.status != 429)
    reads = sum(1 for at in fresh_reads if start <= at < end)
    return {
        "seconds": round(span, 1),
        "ingest_requests": ingest,
        "ingest_per_s": round(ingest / span, 3),
        "ingest_share_of_budget": round(ingest / span / BUDGET_PER_S, 3),
        "of_which_pushback_fresh_reads": reads,
        "ingest_share_without_fresh_reads": round((ingest - reads) / span / BUDGET_PER_S, 3),
        "push_requests": push,
        "push_share_of_budget": round(push / span / BUDGET_PER_S, 3),
        "queries": dict(Counter(e.purpose for e in seen if e.purpose and e.status != 429)),
    }


async def one_model(
    server: str, model: str, trials_per_kind: int, quiet_s: float, seed: int, tmp: Path
) -> dict[str, Any]:
    rng = random.Random(seed)
    videos = 4 * trials_per_kind + 4
    box, log = sandbox(model, videos=videos, webhook_window_ms=60_000)
    receiver = EventReceiver()
    with box:
        service, url = await start_service(
            server, box, CHANNELS, tmp, step_s=0.05, **client_settings(model)
        )
        db = await Database.connect(url)
        admin = SandboxAdmin(box.base_url)
        try:
            await admin.info()
            await receiver.start()
            await admin.subscribe(f"{service.base_url}/webhooks/notion", verified=True)
            await admin.subscribe(receiver.url, verified=True)
            fresh_reads = count_fresh_reads(service)
            pages = await admin.pages()
            by_channel: dict[str, list[str]] = {WAITING: [], AUTO: []}
            for page in pages:
                channel = (page["properties"]["Channel"].get("select") or {}).get("name")
                by_channel.setdefault(str(channel), []).append(page["id"])
            trials: list[Trial] = []
            for kind, (channel, *_rest) in KINDS.items():
                for _ in range(trials_per_kind):
                    chosen = by_channel[channel].pop()
                    trials.append(Trial(chosen, kind, rng.uniform(*DELAY_S)))

            # Quiet: nothing queued, nothing written; ingest polls on its interval.
            await asyncio.sleep(3.0)
            quiet_start = time.monotonic()
            await asyncio.sleep(quiet_s)
            quiet_end = time.monotonic()

            active_start = time.monotonic()
            await admin.edit([t.page for t in trials], {"Status": {"status": {"name": "Queued"}}})
            edits: set[asyncio.Task[None]] = set()

            async def edit(trial: Trial) -> None:
                assert trial.written is not None
                await asyncio.sleep(max(0.0, trial.written + trial.delay_s - time.monotonic()))
                label = KINDS[trial.kind][2]
                trial.edited_wall = datetime.now(UTC)
                trial.edited = time.monotonic()
                await admin.edit([trial.page], {"Status": {"status": {"name": label}}})

            deadline = active_start + 60 + DELAY_S[1] + 30
            while time.monotonic() < deadline and not all(t.done for t in trials):
                shown = {p["id"]: status_name(p) for p in await admin.pages()}
                now = time.monotonic()
                for trial in trials:
                    if trial.written is None and shown.get(trial.page) == KINDS[trial.kind][1]:
                        trial.written = now
                        task = asyncio.create_task(edit(trial))
                        edits.add(task)
                        task.add_done_callback(edits.discard)
                await react(db, trials)
                await asyncio.sleep(0.1)
            active_end = time.monotonic()
            for task in list(edits):
                task.cancel()
            last_edit = max((t.edited for t in trials if t.edited is not None), default=0.0)

            async def all_events() -> bool:
                edited = [t for t in trials if t.edited is not None]
                return all(webhook_after(receiver, t) is not None for t in edited)

            await until(all_events, last_edit + WEBHOOK_WAIT_S - time.monotonic(), every_s=0.5)
            sandbox_stats = await admin.stats()
        finally:
            await service.stop()
            await admin.aclose()
            await db.close()
            await receiver.stop()

    for trial in trials:
        trial.webhook_s = webhook_after(receiver, trial)
    reacted = [t.reacted_s for t in trials if t.reacted_s is not None]
    waiting_phase = [t.written for t in trials if t.written is not None]
    by_kind = {
        kind: percentiles([t.reacted_s for t in trials if t.kind == kind and t.reacted_s])
        for kind in KINDS
    }
    webhook_delays = [t.webhook_s for t in trials if t.webhook_s is not None]
    # After push-back wrote every trial page's label: the creator's edits and their reactions.
    waiting_start = max(waiting_phase) if waiting_phase else active_start
    return {
        "run": "follow_up",
        "rate_model": model,
        "latency_ms": list(LATENCY_MS),
        "webhook_window_s": 60,
        "trials": len(trials),
        "edited": sum(1 for t in trials if t.edited is not None),
        "reacted": len(reacted),
        "edit_after_our_write_s": percentiles([t.delay_s for t in trials]),
        "reaction_s": percentiles(reacted),
        "reaction_s_by_kind": by_kind,
        "webhook_after_edit_s": percentiles(webhook_delays),
        "webhook_within_5s": sum(1 for d in webhook_delays if d <= 5),
        "webhook_missing": sum(1 for t in trials if t.edited is not None and t.webhook_s is None),
        "reaction_s_webhook_over_5s": percentiles(
            [t.reacted_s for t in trials if t.reacted_s is not None and (t.webhook_s or 99) > 5]
        ),
        "ingest_quiet": ingest_share(log, quiet_start, quiet_end, fresh_reads),
        "ingest_active": ingest_share(log, active_start, active_end, fresh_reads),
        "ingest_active_after_writes": ingest_share(log, waiting_start, active_end, fresh_reads),
        "rate_limited_sent_by_sandbox": sandbox_stats["rate_limited"],
        "requests_active": counts(between(log, active_start, active_end)),
        "slowest": sorted(
            (
                {"kind": t.kind, "reaction_s": t.reacted_s, "webhook_s": t.webhook_s}
                for t in trials
                if t.reacted_s is not None
            ),
            key=lambda t: -float(t["reaction_s"] or 0),
        )[:3],
    }


def webhook_after(receiver: EventReceiver, trial: Trial) -> float | None:
    """Seconds from the trial's edit to the first event of its page by a person since."""
    if trial.edited is None:
        return None
    bare = trial.page.replace("-", "")
    after = [
        at
        for at, page, authors in receiver.arrivals
        if page == bare and at >= trial.edited and "person" in authors
    ]
    return round(min(after) - trial.edited, 3) if after else None


async def react(db: Database, trials: list[Trial]) -> None:
    """Mark the trials whose task has the history row of its reaction since the edit."""
    open_trials = [t for t in trials if t.edited_wall is not None and not t.done]
    if not open_trials:
        return
    rows = await db.pool.fetch(
        "SELECT t.notion_page_id, e.from_status, e.to_status, e.created_at"
        " FROM task_events e JOIN tasks t ON t.id = e.task_id"
        " WHERE t.notion_page_id = ANY($1::text[]) ORDER BY e.id",
        [t.page for t in open_trials],
    )
    for trial in open_trials:
        assert trial.edited_wall is not None
        source, target = KINDS[trial.kind][3]
        for row in rows:
            if (
                row["notion_page_id"] == trial.page
                and row["to_status"] == target
                and (source is None or row["from_status"] == source)
                and row["created_at"] >= trial.edited_wall
            ):
                trial.reacted_s = round((row["created_at"] - trial.edited_wall).total_seconds(), 3)
                trial.done = True
                break


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trials", type=int, default=12, help="per kind (approval, cancel, requeue)"
    )
    parser.add_argument("--quiet-s", type=float, default=30.0)
    parser.add_argument("--models", default="bucket,window,window+budget")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    configure_logging("error", "json")
    quiet_logs()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="reelqueue-bench-") as tmp:
        server = start_embedded_server(Path(tmp) / "pg")
        for model in args.models.split(","):
            result = await one_model(server, model, args.trials, args.quiet_s, args.seed, Path(tmp))
            print(json.dumps(result), flush=True)
            results.append(result)
    summary = {
        "run": "summary",
        "code": code_version(),
        "targets": {
            r["rate_model"]: {
                "reaction_p95_within_5s": (r["reaction_s"]["p95"] or 99) <= 5,
                "all_reacted": r["reacted"] == r["trials"],
            }
            for r in results
        },
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
