"""The webhook receiver: signed, well-formed, new events ring the doorbell; the rest get a 4xx."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from reelqueue.sandbox import SandboxAdmin
from reelqueue.service import Service
from tests.fixtures.service import StartService, fetchval, ready, until
from tests.strategies import json_values

TOKEN = "secret_webhook_test_token"


def sign(body: bytes, token: str = TOKEN) -> str:
    return "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def event(page_id: str, *, kind: str = "page.properties_updated", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-11-24T12:00:00.000Z",
        "workspace_id": str(uuid.uuid4()),
        "subscription_id": str(uuid.uuid4()),
        "integration_id": str(uuid.uuid4()),
        "type": kind,
        "authors": [{"id": str(uuid.uuid4()), "type": "person"}],
        "attempt_number": 1,
        "entity": {"id": page_id, "type": "page"},
        "data": {"parent": {"id": str(uuid.uuid4()), "type": "database"}, "updated_properties": []},
    }
    body.update(extra)
    return body


async def post(service: Service, raw: bytes, signature: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-notion-signature"] = signature
    async with httpx.AsyncClient(base_url=service.base_url) as client:
        return await client.post("/webhooks/notion", content=raw, headers=headers)


async def signed_service(start_service: StartService) -> Service:
    service = await start_service(notion_webhook_token=SecretStr(TOKEN))
    await ready(service)
    return service


async def test_bad_input_gets_the_right_4xx_and_no_task(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    service = await signed_service(start_service)
    page = (await sandbox.pages())[0]["id"]
    good = json.dumps(event(page)).encode()

    assert (await post(service, good, None)).status_code == 401
    assert (await post(service, good, sign(good, "secret_forged"))).status_code == 401
    assert (await post(service, good, "sha256=nothex")).status_code == 401
    assert (await post(service, good, sign(good + b" "))).status_code == 401
    truncated = good[: len(good) // 2]
    answer = await post(service, truncated, sign(truncated))
    assert answer.status_code == 400
    assert "JSON" in answer.json()["error"]
    not_event = b'{"hello": "world"}'
    assert (await post(service, not_event, sign(not_event))).status_code == 400
    huge = b'{"id": "' + b"x" * 10_000_000 + b'"}'
    assert (await post(service, huge, sign(huge))).status_code == 413
    unknown = json.dumps(event(page, kind="comment.created")).encode()
    answer = await post(service, unknown, sign(unknown))
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"

    assert await fetchval(database_url, "SELECT count(*) FROM tasks") == 0
    async with httpx.AsyncClient(base_url=service.base_url) as client:
        health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["leader"] is True
    assert health.json()["database"] == "ok"
    assert health.json()["notion"] == "ok"


async def test_a_redelivered_event_rings_once_and_our_own_writes_not_at_all(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    service = await signed_service(start_service)
    page = (await sandbox.pages())[0]["id"]
    body = json.dumps(event(page)).encode()
    first = await post(service, body, sign(body))
    again = await post(service, body, sign(body))
    assert first.json()["status"] == "queued"
    assert again.json()["status"] == "queued"
    ours = json.dumps(event(page, authors=[{"id": service.bot_user_id, "type": "bot"}])).encode()
    assert (await post(service, ours, sign(ours))).json()["status"] == "own_write"

    async def recorded() -> bool:
        return bool(await fetchval(database_url, "SELECT count(*) FROM webhook_inbox") == 2)

    await until(recorded, within_s=5)
    await until(lambda: _counted(service, 3), within_s=5)
    assert service.inbox_verdicts["duplicate"] == 1
    assert service.inbox_verdicts["accepted"] == 1
    assert service.inbox_verdicts["own_write"] == 1


async def _counted(service: Service, events: int) -> bool:
    return sum(service.inbox_verdicts.values()) == events


async def test_the_handshake_token_is_kept_and_then_verifies_events(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    service = await start_service()
    await ready(service)
    subscription = await sandbox.subscribe(f"{service.base_url}/webhooks/notion")
    token = subscription["verification_token"]
    page = (await sandbox.pages())[0]["id"]
    body = json.dumps(event(page, subscription_id=subscription["id"])).encode()
    sent = datetime.now(UTC)
    assert (await post(service, body, sign(body, token))).json()["status"] == "queued"
    assert (await post(service, body, sign(body, "secret_other"))).status_code == 401
    async with httpx.AsyncClient(base_url=service.base_url) as client:
        health = (await client.get("/healthz")).json()
    # Counted from the event just accepted (plus the 0.05 s the age may round up by).
    assert health["last_webhook_age_s"] <= (datetime.now(UTC) - sent).total_seconds() + 0.05


async def test_a_queued_edit_through_signed_webhooks_is_queued(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    await start_service(subscribed=True)
    page = (await sandbox.pages())[0]["id"]
    await sandbox.edit([page], {"Status": {"status": {"name": "Queued"}}})

    async def queued() -> bool:
        return bool(await fetchval(database_url, "SELECT count(*) FROM tasks") == 1)

    await until(queued, within_s=5)
    accepted = await fetchval(
        database_url, "SELECT count(*) FROM webhook_inbox WHERE entity_id = $1", page
    )
    assert accepted >= 1


JSON = json_values()


async def test_fuzzed_bodies_never_make_a_task_or_a_500(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    service = await signed_service(start_service)
    statuses: list[int] = []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        body=st.one_of(
            st.binary(max_size=200),
            JSON.map(lambda v: json.dumps(v).encode()),
            st.fixed_dictionaries(
                {"id": st.text(max_size=10), "type": st.sampled_from(["page.created", "x"])},
                optional={"entity": JSON, "authors": JSON, "data": JSON},
            ).map(lambda v: json.dumps(v).encode()),
        ),
        signed=st.booleans(),
    )
    def one(body: bytes, signed: bool) -> None:
        with httpx.Client(base_url=service.base_url) as client:
            headers = {"x-notion-signature": sign(body)} if signed else {}
            answer = client.post("/webhooks/notion", content=body, headers=headers)
        statuses.append(answer.status_code)
        assert answer.status_code < 500
        if not signed:
            assert answer.status_code in {401, 200}

    await asyncio.to_thread(one)
    assert await fetchval(database_url, "SELECT count(*) FROM tasks") == 0
    assert set(statuses) & {400, 401}
    async with httpx.AsyncClient(base_url=service.base_url) as client:
        assert (await client.get("/healthz")).status_code == 200
