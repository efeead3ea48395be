"""The rate limit: a token bucket per token over /v1; the admin API is exempt and uncounted."""

from __future__ import annotations

import asyncio
import time

import httpx

from reelqueue.sandbox import SandboxAdmin
from reelqueue.sandbox.ratelimit import TokenBucket


def test_a_bucket_grants_its_burst_then_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=3.0, burst=6, clock=lambda: now[0])
    assert [bucket.take() for _ in range(6)] == [0.0] * 6
    wait = bucket.take()
    assert abs(wait - 1 / 3) < 1e-9
    now[0] += 1 / 3
    assert bucket.take() == 0.0


async def test_a_burst_is_answered_then_429(sandbox: SandboxAdmin, raw: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(*(raw.get("/v1/users/me") for _ in range(10)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) in (6, 7)
    limited = [a for a in answers if a.status_code == 429]
    assert limited
    for answer in limited:
        assert answer.json()["code"] == "rate_limited"
        assert int(answer.headers["Retry-After"]) >= 1


async def test_a_client_at_the_rate_is_never_limited(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await sandbox.reset(rps=20, burst=2)
    started = time.monotonic()
    for n in range(12):
        await asyncio.sleep(max(0.0, started + n / 20 - time.monotonic()))
        assert (await raw.get("/v1/users/me")).status_code == 200


async def test_wrong_tokens_do_not_spend_the_budget(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await sandbox.reset(rps=1, burst=1)
    for _ in range(5):
        answer = await raw.get("/v1/users/me", headers={"Authorization": "Bearer wrong"})
        assert answer.status_code == 401
    assert (await raw.get("/v1/users/me")).status_code == 200


async def test_the_admin_api_is_neither_limited_nor_counted(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await sandbox.reset(rps=1, burst=1)
    for _ in range(10):
        await sandbox.pages()
    assert (await raw.get("/v1/users/me")).status_code == 200
    stats = await sandbox.stats()
    assert stats["requests"] == {"GET /v1/users/me": {"200": 1}}
    assert stats["rate_limited"] == 0
