"""/healthz tells the truth about Notion: failing since when, until a request succeeds again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from reelqueue.config import DEFAULT_CHANNELS
from reelqueue.sandbox import SandboxAdmin
from reelqueue.service import Service, ServiceOptions
from tests.fixtures.service import StartService, ready, service_settings, until
from tests.web.helpers import deliver, health

TOKEN = "secret_health_webhook_token"


async def health_when(
    service: Service, condition: Callable[[dict[str, Any]], bool], *, within_s: float
) -> dict[str, Any]:
    """The first /healthz body that meets `condition`."""
    seen: list[dict[str, Any]] = []

    async def met() -> bool:
        seen.append((await health(service)).json())
        return condition(seen[-1])

    await until(met, within_s=within_s, every_s=0.1)
    return seen[-1]


def seconds_since(moment: datetime) -> float:
    """Seconds since `moment`, plus the 0.05 s /healthz's ages may round up by."""
    return (datetime.now(UTC) - moment).total_seconds() + 0.05


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


async def test_an_outage_reads_failing_since_its_first_failed_request_until_one_succeeds(
    sandbox: SandboxAdmin, start_service: StartService
) -> None:
    started = datetime.now(UTC)
    leader = await start_service(poll_interval_s=0.3)
    await ready(leader)
    standby = await start_service(poll_interval_s=0.3)
    before = (await health(leader)).json()
    assert before["notion"] == "ok"
    assert before["role"] == "leader"
    assert before["last_poll_age_s"] <= seconds_since(started), "a poll of this service's"
    assert before["last_webhook_at"] is None
    assert before["roles"]["leader"]["holding"] is True
    assert before["roles"]["leader"]["verified_at"] is not None
    assert before["failing_roles"] == []

    began = datetime.now(UTC)
    await sandbox.set_faults(error_rate=1.0, status_codes=[503])
    failing = await health_when(leader, lambda h: h["notion"] == "failing", within_s=15)
    since = parse(failing["notion_failing_since"])
    assert began - timedelta(seconds=1) <= since <= datetime.now(UTC)
    assert failing["notion_detail"] == f"failing since {failing['notion_failing_since']}: HTTP 503"
    assert failing["status"] == "degraded"
    assert (await health(leader)).status_code == 200, "a restart would not bring Notion back"
    assert (await health(leader, strict="true")).status_code == 503
    on_standby = (await health(standby)).json()
    assert on_standby["role"] == "standby"
    assert on_standby["status"] == "ok"
    assert on_standby["last_poll_age_s"] is not None, "the leader's polls are in the database"
    assert on_standby["roles"]["leader"]["holding"] is False
    assert on_standby["roles"]["ingest"]["state"] == "idle", "a standby does not ingest"

    await sandbox.set_faults()
    recovered = await health_when(leader, lambda h: h["status"] == "ok", within_s=30)
    assert recovered["notion"] == "ok"
    assert recovered["notion_failing_since"] is None
    assert recovered["failing_roles"] == []
    assert recovered["roles"]["ingest"]["state"] == "ok"
    assert (await health(leader, strict="true")).status_code == 200


async def test_a_hung_notion_reads_failing_before_any_timeout_and_webhook_age_shows(
    sandbox: SandboxAdmin, database_url: str
) -> None:
    settings = service_settings(sandbox, poll_interval_s=0.3, notion_webhook_token=TOKEN)
    options = ServiceOptions(
        port=0, leader_retry_s=0.2, notion_stall_s=0.5, deployment_settle_s=0.0
    )
    service = Service(settings, DEFAULT_CHANNELS, database_url=database_url, options=options)
    try:
        await service.start()
        await ready(service)
        page = (await sandbox.pages())[0]["id"]
        sent = datetime.now(UTC)
        assert (await deliver(service, TOKEN, "sub-a", page)).json()["status"] == "queued"
        age = (await health(service)).json()["last_webhook_age_s"]
        assert age <= seconds_since(sent), "the age counts from the webhook just delivered"

        await sandbox.set_faults(hang_rate=1.0, hang_max_ms=3000)
        hung = await health_when(service, lambda h: h["notion"] == "failing", within_s=10)
        assert hung["notion_error"].startswith("no answer for ")
        await sandbox.set_faults()
        await health_when(service, lambda h: h["notion"] == "ok", within_s=30)
    finally:
        await service.stop()


async def test_a_429_reads_rate_limited_until_the_hold_ends(
    sandbox: SandboxAdmin, start_service: StartService
) -> None:
    service = await start_service(poll_interval_s=0.3)
    await ready(service)
    await sandbox.reset(rate_model="window", budget=1, window_s=5)
    held = await health_when(service, lambda h: h["notion"] == "rate-limited", within_s=15)
    until_at = parse(held["notion_rate_limited_until"])
    assert datetime.now(UTC) - timedelta(seconds=1) < until_at
    assert until_at <= datetime.now(UTC) + timedelta(seconds=6)
    shown = held["notion_rate_limited_until"]
    assert held["notion_detail"].startswith(f"rate-limited until {shown}")
    assert held["status"] == "ok", "Notion holding us back is not an outage"
