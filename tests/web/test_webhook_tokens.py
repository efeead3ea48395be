"""Webhook tokens over real HTTP: a stranger's handshake cannot take over, people can accept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import httpx
import structlog
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.ingest.webhook_tokens import LEGACY_TOKEN_KEY, accept_token, load_tokens, token_id
from reelqueue.sandbox import SandboxAdmin
from tests.cli.helpers import cli_env, one_line_error, reelqueue
from tests.fixtures.service import StartService, fetchval, ready, until
from tests.web.helpers import deliver, handshake, sign

REAL = "secret_real_subscription_token"
STRANGER = "secret_strangers_token"


async def cli(tmp_path: Path, database_url: str, *args: str, **env: str) -> str:
    """Run `reelqueue ARGS` against the test's database; its stdout (it must succeed)."""
    environment = cli_env(tmp_path, DATABASE_URL=database_url, **env)
    result = await asyncio.to_thread(reelqueue, *args, env=environment)
    assert result.returncode == 0, result.stderr
    return result.stdout


def topic(text: str) -> dict[str, Any]:
    """A Topic edit, as a person makes it."""
    return {"Topic": {"rich_text": [{"type": "text", "text": {"content": text}}]}}


def refusals(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [line for line in logs if str(line["event"]).startswith("webhook refused")]


async def test_a_strangers_handshake_waits_for_accept_and_never_replaces_the_token(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str, tmp_path: Path
) -> None:
    service = await start_service()
    await ready(service)
    page = (await sandbox.pages())[0]["id"]
    with structlog.testing.capture_logs() as logs:
        assert (await handshake(service, REAL)).json() == {"status": "handshake"}
        assert (await deliver(service, REAL, "sub-studio", page)).json()["status"] == "queued"

        assert (await handshake(service, STRANGER)).status_code == 200
        assert (await deliver(service, REAL, "sub-studio", page)).json()["status"] == "queued"
        refused = await deliver(service, STRANGER, "sub-other", page)
        assert refused.status_code == 401

    assert REAL not in repr(logs)
    assert STRANGER not in repr(logs)
    waiting = token_id(STRANGER)
    kept_aside = [line for line in logs if "kept aside" in str(line["event"])]
    assert kept_aside
    assert kept_aside[0]["token_id"] == waiting
    (refusal,) = refusals(logs)
    assert refusal["cause"] == "candidate_waiting"
    assert f"reelqueue webhook token --accept {waiting}" in refusal["event"]

    listing = await cli(tmp_path, database_url, "webhook", "token")
    assert f"accepted   {token_id(REAL)}  subscription sub-studio  workspace Studio" in listing
    assert f"candidate  {waiting}" in listing
    assert STRANGER in listing, "a waiting token is shown so it can be pasted into Notion"
    assert REAL not in listing, "a token that verified deliveries is not shown again"

    accepted = await cli(tmp_path, database_url, "webhook", "token", "--accept", waiting[:8])
    assert waiting in accepted
    assert (await deliver(service, STRANGER, "sub-other", page)).json()["status"] == "queued"
    assert (await deliver(service, REAL, "sub-studio", page)).json()["status"] == "queued"
    rows = json.loads(await cli(tmp_path, database_url, "webhook", "token", "--json"))
    verified = {s["subscription_id"]: r["id"] for r in rows for s in r["subscriptions"]}
    assert verified == {"sub-studio": token_id(REAL), "sub-other": waiting}
    assert {r["state"] for r in rows} == {"accepted"}

    await cli(tmp_path, database_url, "webhook", "token", "--forget", waiting)

    async def refused_again() -> bool:
        return (await deliver(service, STRANGER, "sub-other", page)).status_code == 401

    await until(refused_again, within_s=10, every_s=0.2)
    unknown = await asyncio.to_thread(
        reelqueue,
        *("webhook", "token", "--accept", "0123456789ab"),
        env=cli_env(tmp_path, DATABASE_URL=database_url),
    )
    assert unknown.returncode == 2
    assert "no stored webhook token has the id 0123456789ab" in one_line_error(unknown.stderr)
    async with httpx.AsyncClient(base_url=service.base_url) as client:
        metrics = (await client.get("/metrics")).text
    assert 'reelqueue_webhook_refusals_total{cause="candidate_waiting"} 1.0' in metrics


async def test_until_a_token_verifies_a_delivery_each_new_handshake_is_taken(
    sandbox: SandboxAdmin, start_service: StartService
) -> None:
    service = await start_service()
    await ready(service)
    page = (await sandbox.pages())[0]["id"]
    await handshake(service, REAL)
    await handshake(service, STRANGER)
    assert (await deliver(service, STRANGER, "sub-b", page)).json()["status"] == "queued"
    assert (await deliver(service, REAL, "sub-a", page)).json()["status"] == "queued"
    await handshake(service, "secret_third")
    assert (await deliver(service, "secret_third", "sub-c", page)).status_code == 401


async def test_refused_deliveries_name_their_likely_cause_once_a_minute(
    sandbox: SandboxAdmin, start_service: StartService
) -> None:
    service = await start_service()
    await ready(service)
    page = (await sandbox.pages())[0]["id"]
    raw = b'{"id": "x", "type": "page.created"}'
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            assert (await deliver(service, REAL, "sub-a", page)).status_code == 401
        async with httpx.AsyncClient(base_url=service.base_url) as client:
            headers = {"x-notion-signature": sign(raw, REAL)[:20]}
            answer = await client.post("/webhooks/notion", content=raw, headers=headers)
        assert answer.status_code == 401
    assert [line["cause"] for line in refusals(logs)] == ["no_token", "malformed_signature"]
    assert "set NOTION_WEBHOOK_TOKEN" in refusals(logs)[0]["event"]
    assert refusals(logs)[0]["claimed_subscription_id"] == "sub-a"


async def test_a_wrong_notion_webhook_token_is_named_as_the_cause(
    sandbox: SandboxAdmin, start_service: StartService
) -> None:
    service = await start_service(notion_webhook_token=SecretStr(REAL))
    await ready(service)
    page = (await sandbox.pages())[0]["id"]
    with structlog.testing.capture_logs() as logs:
        assert (await handshake(service, STRANGER)).status_code == 200
        assert (await deliver(service, STRANGER, "sub-a", page)).status_code == 401
        assert (await deliver(service, REAL, "sub-a", page)).json()["status"] == "queued"
    (refusal,) = refusals(logs)
    assert refusal["cause"] == "candidate_waiting", "the stranger's handshake waits, even here"
    with structlog.testing.capture_logs() as logs:
        assert (await deliver(service, "secret_elsewhere", "sub-a", page)).status_code == 401
    (refusal,) = refusals(logs)
    assert refusal["cause"] == "configured_mismatch"
    assert "NOTION_WEBHOOK_TOKEN does not match what Notion signs with" in refusal["event"]


async def test_a_token_kept_before_the_upgrade_stays_accepted_and_trusted(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    await fetchval(
        database_url,
        "INSERT INTO service_state (key, value) VALUES ($1, $2) RETURNING key",
        LEGACY_TOKEN_KEY,
        REAL,
    )
    service = await start_service()
    await ready(service)
    page = (await sandbox.pages())[0]["id"]
    assert (await deliver(service, REAL, "sub-a", page)).json()["status"] == "queued"
    await handshake(service, STRANGER)
    assert (await deliver(service, STRANGER, "sub-b", page)).status_code == 401


async def test_two_sandbox_subscriptions_each_keep_their_own_token(
    sandbox: SandboxAdmin, start_service: StartService, engine: AsyncEngine
) -> None:
    service = await start_service()
    await ready(service)
    url = f"{service.base_url}/webhooks/notion"
    pages = [p["id"] for p in await sandbox.pages()]
    first = await sandbox.subscribe(url)
    await sandbox.verify(first["id"], first["verification_token"])
    await sandbox.edit(pages[:1], topic("edit 0"))

    async def verified_by() -> dict[str, str]:
        async with engine.connect() as conn:
            book = await load_tokens(conn)
        return {s: t.id for t in book.accepted for s in t.subscriptions}

    async def first_verified() -> bool:
        return first["id"] in await verified_by()

    await until(first_verified, within_s=10)
    with structlog.testing.capture_logs() as logs:
        second = await sandbox.subscribe(url)
        await sandbox.verify(second["id"], second["verification_token"])
        await sandbox.edit(pages[1:2], topic("edit 1"))

        async def second_refused() -> bool:
            return bool(refusals(logs))

        await until(second_refused, within_s=10)
    waiting = token_id(second["verification_token"])
    assert refusals(logs)[0]["cause"] == "candidate_waiting"
    assert refusals(logs)[0]["claimed_subscription_id"] == second["id"]

    async with engine.begin() as conn:
        await accept_token(conn, waiting)
    await sandbox.edit(pages[2:3], topic("edit 2"))

    async def both_verified() -> bool:
        return await verified_by() == {
            first["id"]: token_id(first["verification_token"]),
            second["id"]: waiting,
        }

    await until(both_verified, within_s=10)
