"""Webhooks as Notion sends them today: timing, verification, retries, moves, restores, schema."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reelqueue.sandbox import SandboxAdmin, SandboxAdminError
from tests.sandbox.conftest import WebhookReceiver, wait_for_stats

QUEUED = {"Status": {"status": {"name": "Queued"}}}
CANCELLED = {"Status": {"status": {"name": "Cancelled"}}}
NOTION_WINDOW_MS = 60_000


def _count(n: int) -> Any:
    return lambda hook: len(hook.events) >= n


async def _fresh(sandbox: SandboxAdmin, **reset: Any) -> list[dict[str, Any]]:
    await sandbox.reset(rps=1000, burst=1000, **reset)
    return await sandbox.pages()


def _topic(text: str) -> dict[str, Any]:
    return {"Topic": {"rich_text": [{"text": {"content": text}}]}}


async def test_a_first_edit_arrives_at_once_and_later_ones_wait_for_the_window(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    first, second, *_ = await _fresh(sandbox, webhook_window_ms=NOTION_WINDOW_MS)
    await sandbox.subscribe(receiver.url, verified=True)
    await sandbox.edit([first["id"]], QUEUED)
    await receiver.wait_for(_count(1))
    await sandbox.edit([first["id"]], _topic("held back for a minute"))
    await sandbox.edit([second["id"]], QUEUED)
    await receiver.wait_for(_count(2))
    assert [e["entity"]["id"] for e in receiver.events] == [first["id"], second["id"]]
    assert (await sandbox.stats())["webhooks"]["sent"] == 2


async def test_the_combined_event_names_every_author_and_then_the_page_is_quiet_again(
    sandbox: SandboxAdmin, receiver: WebhookReceiver, raw: httpx.AsyncClient
) -> None:
    page, *_ = await _fresh(sandbox, webhook_window_ms=300)
    props = page["properties"]
    await sandbox.subscribe(receiver.url, verified=True)
    await sandbox.edit([page["id"]], QUEUED)
    answer = await raw.patch(f"/v1/pages/{page['id']}", json={"properties": _topic("by the bot")})
    assert answer.status_code == 200
    await sandbox.edit([page["id"]], CANCELLED)
    await receiver.wait_for(_count(2))
    combined = receiver.events[1]
    assert combined["data"]["updated_properties"] == [props["Topic"]["id"], props["Status"]["id"]]
    assert combined["authors"] == [
        {"id": sandbox.bot_user_id, "type": "bot"},
        {"id": sandbox.person_user_id, "type": "person"},
    ]
    await sandbox.edit([page["id"]], _topic("after the window"))
    await receiver.wait_for(_count(3))
    assert receiver.events[2]["data"]["updated_properties"] == [props["Topic"]["id"]]
    assert receiver.events[2]["authors"] == [{"id": sandbox.person_user_id, "type": "person"}]


async def test_an_unverified_subscription_gets_the_handshake_and_then_nothing(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    first, second, *_ = await _fresh(sandbox, webhook_window_ms=20)
    waiting = await sandbox.subscribe(receiver.url)
    verified = await sandbox.subscribe(receiver.url, verified=True)
    assert (waiting["verified"], verified["verified"]) == (False, True)
    await sandbox.edit([first["id"]], QUEUED)
    await receiver.wait_for(_count(1))
    assert receiver.events[0]["subscription_id"] == verified["id"]
    assert (await sandbox.stats())["webhooks"]["sent"] == 1

    answer = await sandbox.verify(waiting["id"], waiting["verification_token"])
    assert answer["verified"] is True
    await sandbox.edit([second["id"]], QUEUED)
    await receiver.wait_for(_count(3))
    later = receiver.events[1:]
    assert {e["subscription_id"] for e in later} == {waiting["id"], verified["id"]}
    assert {e["entity"]["id"] for e in later} == {second["id"]}
    assert (await sandbox.stats())["webhooks"]["sent"] == 3


async def test_verifying_needs_the_token_the_handshake_carried(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    await _fresh(sandbox)
    subscription = await sandbox.subscribe(receiver.url)
    with pytest.raises(SandboxAdminError) as refused:
        await sandbox.verify(subscription["id"], "secret_not_the_one")
    assert "400" in str(refused.value)
    assert "secret_not_the_one" not in str(refused.value)
    assert subscription["verification_token"] not in str(refused.value)
    with pytest.raises(SandboxAdminError, match="404"):
        await sandbox.verify("00000000-0000-4000-8000-000000000000", "secret_x")


async def test_any_documented_event_type_can_be_subscribed_to_and_others_are_refused(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    await _fresh(sandbox)
    documented = [
        "page.moved",
        "page.undeleted",
        "page.locked",
        "database.schema_updated",
        "data_source.schema_updated",
        "data_source.content_updated",
        "comment.created",
        "file_upload.completed",
        "view.updated",
    ]
    subscription = await sandbox.subscribe(receiver.url, event_types=documented)
    assert subscription["event_types"] == documented
    with pytest.raises(SandboxAdminError) as refused:
        await sandbox.subscribe(receiver.url, event_types=["page.created", "page.renamed"])
    assert "400" in str(refused.value)
    assert "page.renamed" in str(refused.value)


async def test_a_failing_endpoint_gets_eight_attempts_on_the_scaled_schedule(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    page, *_ = await _fresh(sandbox, webhook_window_ms=20, webhook_retry_scale=0.00001)
    await sandbox.subscribe(receiver.url, verified=True)
    receiver.answers = [500] * 7
    await sandbox.edit([page["id"]], QUEUED)
    await receiver.wait_for(_count(8))
    assert [e["attempt_number"] for e in receiver.events] == list(range(1, 9))
    assert len({e["id"] for e in receiver.events}) == 1
    stats = await wait_for_stats(sandbox, lambda s: s["webhooks"]["delivered"] == 1)
    assert (stats["webhooks"]["failed"], stats["webhooks"]["retried"]) == (7, 7)


async def test_an_event_failing_eight_times_is_abandoned(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    page, *_ = await _fresh(sandbox, webhook_window_ms=20, webhook_retry_scale=0.00001)
    await sandbox.subscribe(receiver.url, verified=True)
    receiver.answers = [503] * 9
    await sandbox.edit([page["id"]], QUEUED)
    stats = await wait_for_stats(sandbox, lambda s: s["webhooks"]["abandoned"] == 1)
    assert (stats["webhooks"]["sent"], stats["webhooks"]["delivered"]) == (8, 0)


async def _ids(raw: httpx.AsyncClient, sandbox: SandboxAdmin) -> set[str]:
    answer = await raw.post(f"/v1/data_sources/{sandbox.data_source_id}/query", json={})
    return {p["id"] for p in answer.json()["results"]}


async def _parent_page(raw: httpx.AsyncClient, sandbox: SandboxAdmin) -> str:
    database = (await raw.get(f"/v1/databases/{sandbox.database_id}")).json()
    return str(database["parent"]["page_id"])


async def test_a_page_moved_out_leaves_the_data_source_and_comes_back(
    sandbox: SandboxAdmin, receiver: WebhookReceiver, raw: httpx.AsyncClient
) -> None:
    page, *_ = await _fresh(sandbox, webhook_window_ms=20)
    target = await _parent_page(raw, sandbox)
    await sandbox.subscribe(receiver.url, verified=True)

    moved = await sandbox.move_page(page["id"], target)
    assert moved["parent"] == {"type": "page_id", "page_id": target}
    fetched = (await raw.get(f"/v1/pages/{page['id']}")).json()
    assert fetched["parent"] == {"type": "page_id", "page_id": target}
    assert list(fetched["properties"]) == ["title"]
    assert page["id"] not in await _ids(raw, sandbox)
    refused = await raw.patch(f"/v1/pages/{page['id']}", json={"properties": QUEUED})
    assert refused.status_code == 400
    await receiver.wait_for(_count(1))
    out = receiver.events[0]
    assert (out["type"], out["entity"]) == ("page.moved", {"id": page["id"], "type": "page"})
    assert out["data"] == {"parent": {"id": target, "type": "page"}}
    assert out["authors"] == [{"id": sandbox.person_user_id, "type": "person"}]

    back = await sandbox.move_page(page["id"], None)
    assert back["parent"]["data_source_id"] == sandbox.data_source_id
    assert back["properties"] == page["properties"]
    assert page["id"] in await _ids(raw, sandbox)
    await receiver.wait_for(_count(2))
    assert receiver.events[1]["data"] == {
        "parent": {
            "id": sandbox.database_id,
            "type": "database",
            "data_source_id": sandbox.data_source_id,
        }
    }


async def test_moving_a_page_into_another_data_source_is_refused(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    page, *_ = await _fresh(sandbox)
    answer = await raw.get(f"/v1/pages/{page['id']}")
    assert answer.status_code == 200
    async with httpx.AsyncClient(base_url=sandbox.base_url, trust_env=False) as admin:
        refused = await admin.post(
            f"/_sandbox/pages/{page['id']}/move",
            json={"parent": {"type": "data_source_id", "data_source_id": sandbox.database_id}},
        )
    assert refused.status_code == 400


async def test_a_page_restored_from_the_trash_sends_page_undeleted(
    sandbox: SandboxAdmin, receiver: WebhookReceiver, raw: httpx.AsyncClient
) -> None:
    page, *_ = await _fresh(sandbox, webhook_window_ms=20)
    await sandbox.subscribe(receiver.url, verified=True)
    await sandbox.delete_page(page["id"])
    await receiver.wait_for(_count(1))
    assert page["id"] not in await _ids(raw, sandbox)
    restored = await sandbox.restore_page(page["id"])
    assert restored["in_trash"] is False
    await receiver.wait_for(_count(2))
    assert [e["type"] for e in receiver.events] == ["page.deleted", "page.undeleted"]
    assert receiver.events[1]["entity"] == {"id": page["id"], "type": "page"}
    assert receiver.events[1]["data"]["parent"]["data_source_id"] == sandbox.data_source_id
    assert page["id"] in await _ids(raw, sandbox)


async def test_renaming_and_removing_properties_sends_data_source_schema_updated(
    sandbox: SandboxAdmin, receiver: WebhookReceiver, raw: httpx.AsyncClient
) -> None:
    page, *_ = await _fresh(sandbox, webhook_window_ms=20)
    props = page["properties"]
    target = await _parent_page(raw, sandbox)
    await sandbox.subscribe(receiver.url, verified=True)
    changes = await sandbox.change_schema({"Priority": {"name": "Urgency"}, "Topic": None})
    expected = [
        {"id": props["Priority"]["id"], "name": "Urgency", "action": "updated"},
        {"id": props["Topic"]["id"], "name": None, "action": "deleted"},
    ]
    assert changes == expected
    schema = (await raw.get(f"/v1/data_sources/{sandbox.data_source_id}")).json()["properties"]
    assert "Urgency" in schema
    assert "Topic" not in schema
    await receiver.wait_for(_count(1))
    event = receiver.events[0]
    assert event["type"] == "data_source.schema_updated"
    assert event["entity"] == {"id": sandbox.data_source_id, "type": "data_source"}
    assert event["data"] == {
        "parent": {"id": target, "type": "page"},
        "updated_properties": expected,
    }
    assert event["authors"] == [{"id": sandbox.person_user_id, "type": "person"}]


async def test_a_property_added_through_the_api_is_told_as_created_by_the_bot(
    sandbox: SandboxAdmin, receiver: WebhookReceiver, raw: httpx.AsyncClient
) -> None:
    await _fresh(sandbox, webhook_window_ms=20)
    await sandbox.subscribe(receiver.url, verified=True)
    answer = await raw.patch(
        f"/v1/data_sources/{sandbox.data_source_id}",
        json={"properties": {"Notes": {"rich_text": {}}}},
    )
    assert answer.status_code == 200
    created = answer.json()["properties"]["Notes"]["id"]
    await receiver.wait_for(_count(1))
    event = receiver.events[0]
    assert event["data"]["updated_properties"] == [
        {"id": created, "name": "Notes", "action": "created"}
    ]
    assert event["authors"] == [{"id": sandbox.bot_user_id, "type": "bot"}]
