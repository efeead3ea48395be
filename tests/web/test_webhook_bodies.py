"""Whatever a sender puts in a webhook body, or however slowly, it gets a 4xx, never a 500."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from typing import Any

import httpx
import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from reelqueue.sandbox import SandboxAdmin
from reelqueue.service import Service
from tests.fixtures.service import StartService, fetchval, ready, until
from tests.strategies import webhook_bodies
from tests.web.helpers import event_body, sign

TOKEN = "secret_webhook_body_token"
PATH = "/webhooks/notion"


async def signed_service(start_service: StartService) -> Service:
    service = await start_service(notion_webhook_token=SecretStr(TOKEN))
    await ready(service)
    return service


async def post(service: Service, raw: bytes, signature: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-notion-signature"] = signature
    async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as client:
        return await client.post(PATH, content=raw, headers=headers)


async def recorded(database_url: str, event_id: str) -> bool:
    found = await fetchval(
        database_url, "SELECT count(*) FROM webhook_inbox WHERE event_id = $1", event_id
    )
    return bool(found == 1)


def real_delivery(page: str) -> tuple[bytes, str]:
    raw = event_body(page, str(uuid.uuid4()))
    return raw, json.loads(raw)["id"]


DEEP = b"[" * 100_000 + b"]" * 100_000
ODD_BODIES = [
    DEEP,
    b'{"id": "e1", "type": "page.created", "entity": ' + b'{"a": ' * 70 + b"1" + b"}" * 71,
    b'{"id": "e2", "type": "page.created", "x": NaN}',
    b'{"id": "e3", "type": "page.created", "x": 1e999}',
    b'{"id": "e4", "type": "page.created", "x": ' + b"9" * 5000 + b"}",
    b'{"id": "e5\\u0000", "type": "page.deleted", "entity": {"id": "\\ud800"}}',
    b'{"id": "' + b"e" * 5000 + b'", "type": "page.created"}',
    b'{"id": "e6", "type": "page.deleted", "entity": {"id": "not a notion id"}}',
    b'{"id": "e7", "type": "page.created", "timestamp": "2026-12-03"}',
    b'{"id": "e8", "type": "page.created", "timestamp": {"a": 1}, "subscription_id": [1]}',
    b'{"verification_token": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b"\xff\xfe not utf-8",
]


async def test_odd_bodies_signed_or_not_get_a_4xx_and_real_ones_still_land(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    service = await signed_service(start_service)
    for raw in ODD_BODIES:
        for signature in (sign(raw, TOKEN), None, "sha256=" + "0" * 64):
            answer = await post(service, raw, signature)
            assert answer.status_code < 500, (raw[:60], signature, answer.text)
    deep = await post(service, DEEP, sign(DEEP, TOKEN))
    assert deep.status_code == 400
    assert "deeper" in deep.json()["error"]

    page = (await sandbox.pages())[0]["id"]
    raw, event_id = real_delivery(page)
    assert (await post(service, raw, sign(raw, TOKEN))).status_code == 200
    await until(lambda: recorded(database_url, event_id), within_s=5)
    assert await fetchval(database_url, "SELECT count(*) FROM tasks") == 0


async def test_arbitrary_bodies_never_get_a_500(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    service = await signed_service(start_service)

    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=webhook_bodies(), signed=st.booleans(), ascii_only=st.booleans())
    def one(body: Any, signed: bool, ascii_only: bool) -> None:
        raw = json.dumps(body, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
        headers = {"x-notion-signature": sign(raw, TOKEN)} if signed else {}
        with httpx.Client(base_url=service.base_url) as client:
            answer = client.post(PATH, content=raw, headers=headers)
        assert answer.status_code < 500, answer.text

    await asyncio.to_thread(one)
    page = (await sandbox.pages())[0]["id"]
    raw, event_id = real_delivery(page)
    assert (await post(service, raw, sign(raw, TOKEN))).status_code == 200
    await until(lambda: recorded(database_url, event_id), within_s=5)
    assert "failed" not in service.inbox_verdicts


async def _closed(reader: asyncio.StreamReader) -> bytes:
    """What the server sent before closing the connection."""
    return await reader.read()


async def test_trickling_and_silent_connections_are_cut_off(
    start_service: StartService,
) -> None:
    service = await signed_service(start_service)
    host, port = service.base_url.removeprefix("http://").split(":")
    head = (
        f"POST {PATH} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        "content-length: 1000\r\n\r\n"
    ).encode()
    connections: list[tuple[str, asyncio.StreamReader, asyncio.StreamWriter]] = []
    for kind in ["body"] * 40 + ["head"] * 40 + ["silent"] * 20:
        reader, writer = await asyncio.open_connection(host, int(port))
        connections.append((kind, reader, writer))
        if kind == "body":
            writer.write(head + b'{"id": ')
        elif kind == "head":
            writer.write(head[:20])

    async def trickle() -> None:
        while True:
            await asyncio.sleep(0.5)
            for kind, _, writer in connections:
                if kind != "silent" and not writer.is_closing():
                    writer.write(b" " if kind == "body" else b"x")

    dripping = asyncio.create_task(trickle())
    try:
        answers = await asyncio.wait_for(
            asyncio.gather(*(_closed(reader) for _, reader, _ in connections)), 30
        )
    finally:
        dripping.cancel()
        for _, _, writer in connections:
            writer.close()
    for (kind, _, _), answer in zip(connections, answers, strict=True):
        if kind == "body":
            assert answer.startswith(b"HTTP/1.1 408"), answer[:40]
        else:
            assert answer == b""
    async with httpx.AsyncClient(base_url=service.base_url) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_a_sender_hanging_up_mid_body_is_one_log_line(
    start_service: StartService, caplog: pytest.LogCaptureFixture
) -> None:
    service = await signed_service(start_service)
    host, port = service.base_url.removeprefix("http://").split(":")
    with structlog.testing.capture_logs() as logs, caplog.at_level(logging.INFO):
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"POST {PATH} HTTP/1.1\r\nhost: {host}\r\ncontent-length: 500\r\n\r\n{{".encode()
        )
        await writer.drain()
        writer.close()  # TCP delivers the head and the body's start before the hang-up

        async def logged() -> bool:
            return any("hung up" in entry["event"] for entry in logs)

        await until(logged, within_s=5)
    lines = [entry for entry in logs if entry["log_level"] in ("info", "warning", "error")]
    assert [entry["event"] for entry in lines] == ["webhook sender hung up before its body arrived"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_real_delivery_during_a_junk_burst_is_answered_and_taken(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    service = await signed_service(start_service)
    page = (await sandbox.pages())[0]["id"]
    rng = random.Random(7)

    def junk(i: int) -> tuple[bytes, str | None]:
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        choice = i % 4
        if choice == 0:
            return raw, None
        if choice == 1:
            return raw, f"sha256={rng.getrandbits(256):064x}"
        if choice == 2:
            return event_body(page, "sub"), sign(b"other", TOKEN)
        return DEEP[:2000] + DEEP[-2000:], None

    host, port = service.base_url.removeprefix("http://").split(":")

    async def send(raw: bytes, signature: str | None) -> int:
        reader, writer = await asyncio.open_connection(host, int(port))
        signed = f"x-notion-signature: {signature}\r\n" if signature else ""
        head = f"POST {PATH} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {len(raw)}\r\n"
        writer.write(f"{head}{signed}connection: close\r\n\r\n".encode() + raw)
        answer = await reader.read()
        writer.close()
        answered.append(1)
        return int(answer.split(b" ", 2)[1])

    async def burst() -> list[int]:
        return await asyncio.gather(*(send(*junk(i)) for i in range(500)))

    answered: list[int] = []

    # The junk comes from a client of its own, as a stranger's would.
    junk_statuses = asyncio.create_task(asyncio.to_thread(asyncio.run, burst()))

    async def under_way() -> bool:
        return len(answered) >= 50

    await until(under_way, within_s=30, every_s=0.01)
    raw, event_id = real_delivery(page)
    real = await post(service, raw, sign(raw, TOKEN))
    assert real.status_code == 200
    assert max(await junk_statuses) < 500
    await until(lambda: recorded(database_url, event_id), within_s=5)
