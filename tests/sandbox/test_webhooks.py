"""Webhooks: handshake, signatures, sparse events, aggregation, faults, retries, authors."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import httpx

from reelqueue.sandbox import SandboxAdmin
from tests.sandbox.conftest import WebhookReceiver, wait_for_stats

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
EVENT_KEYS = {
    "id",
    "timestamp",
    "workspace_id",
    "workspace_name",
    "subscription_id",
    "integration_id",
    "type",
    "authors",
    "attempt_number",
    "api_version",
    "entity",
    "data",
}


async def _subscribed(
    sandbox: SandboxAdmin, receiver: WebhookReceiver, **reset: Any
) -> dict[str, Any]:
    await sandbox.reset(rps=1000, burst=1000, **reset)
    return await sandbox.subscribe(receiver.url, verified=True)


def _count(n: int) -> Any:
    return lambda hook: len(hook.events) >= n


async def test_subscribing_posts_the_verification_token(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    subscription = await _subscribed(sandbox, receiver)
    assert subscription["handshake_status"] == 200
    assert subscription["verification_token"].startswith("secret_")
    assert len(receiver.deliveries) == 1
    assert receiver.deliveries[0].body == {"verification_token": subscription["verification_token"]}


async def test_events_are_signed_with_the_verification_token(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    subscription = await _subscribed(sandbox, receiver, webhook_window_ms=20)
    page = (await sandbox.pages())[0]
    await sandbox.edit([page["id"]], {"Status": {"status": {"name": "Queued"}}})
    await receiver.wait_for(_count(1))
    delivery = receiver.deliveries[-1]
    key = subscription["verification_token"].encode()
    expected = "sha256=" + hmac.new(key, delivery.raw, hashlib.sha256).hexdigest()
    assert delivery.headers["x-notion-signature"] == expected


async def test_a_property_update_event_is_sparse_and_names_property_ids(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    subscription = await _subscribed(sandbox, receiver, webhook_window_ms=20)
    page = (await sandbox.pages())[0]
    await sandbox.edit([page["id"]], {"Status": {"status": {"name": "Queued"}}})
    await receiver.wait_for(_count(1))
    event = receiver.events[0]
    assert set(event) == EVENT_KEYS
    assert UUID.match(event["id"])
    assert event["type"] == "page.properties_updated"
    assert event["subscription_id"] == subscription["id"]
    assert event["attempt_number"] == 1
    assert event["api_version"] == "2025-09-03"
    assert event["entity"] == {"id": page["id"], "type": "page"}
    assert event["authors"] == [{"id": sandbox.person_user_id, "type": "person"}]
    assert event["data"] == {
        "parent": {
            "id": sandbox.database_id,
            "type": "database",
            "data_source_id": sandbox.data_source_id,
        },
        "updated_properties": [page["properties"]["Status"]["id"]],
    }
    assert "Queued" not in receiver.deliveries[-1].raw.decode()


async def test_later_edits_to_one_page_within_the_window_make_one_more_event(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    await _subscribed(sandbox, receiver, webhook_window_ms=300)
    page = (await sandbox.pages())[0]
    properties = page["properties"]
    current = (properties["Priority"]["select"] or {}).get("name")
    other = "Low" if current == "High" else "High"
    await sandbox.edit([page["id"]], {"Status": {"status": {"name": "Queued"}}})
    await sandbox.edit([page["id"]], {"Priority": {"select": {"name": other}}})
    await sandbox.edit([page["id"]], {"Status": {"status": {"name": "Cancelled"}}})
    await receiver.wait_for(_count(2))
    await wait_for_stats(sandbox, lambda s: s["webhooks"]["delivered"] == 2)
    assert [e["data"]["updated_properties"] for e in receiver.events] == [
        [properties["Status"]["id"]],
        [properties["Priority"]["id"], properties["Status"]["id"]],
    ]


async def test_a_bulk_edit_makes_one_event_per_page(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    await _subscribed(sandbox, receiver, webhook_window_ms=50)
    ids = [p["id"] for p in await sandbox.pages()]
    await sandbox.edit(ids, {"Status": {"status": {"name": "Queued"}}})
    await receiver.wait_for(_count(20))
    assert sorted(e["entity"]["id"] for e in receiver.events) == sorted(ids)


async def test_an_unchanged_value_makes_no_event(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    await _subscribed(sandbox, receiver, webhook_window_ms=20)
    page = (await sandbox.pages())[0]
    await sandbox.edit([page["id"]], {"Status": {"status": {"name": "Draft"}}})
    await sandbox.edit([page["id"]], {"Topic": {"rich_text": [{"text": {"content": "New"}}]}})
    await receiver.wait_for(_count(1))
    await wait_for_stats(sandbox, lambda s: s["webhooks"]["delivered"] == 1)
    assert receiver.events[0]["data"]["updated_properties"] == [page["properties"]["Topic"]["id"]]


async def test_api_writes_are_authored_by_the_bot(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    await _subscribed(sandbox, receiver, webhook_window_ms=20)
    page = (await sandbox.pages())[0]
    async with httpx.AsyncClient(base_url=sandbox.base_url, trust_env=False) as client:
        answer = await client.patch(
            f"/v1/pages/{page['id']}",
            headers={"Authorization": f"Bearer {sandbox.token}", "Notion-Version": "2025-09-03"},
            json={"properties": {"Status": {"status": {"name": "Processing"}}}},
        )
    assert answer.status_code == 200
    await receiver.wait_for(_count(1))
    assert receiver.events[0]["authors"] == [{"id": sandbox.bot_user_id, "type": "bot"}]


async def test_created_and_deleted_pages_make_their_events(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    await _subscribed(sandbox, receiver, webhook_window_ms=20)
    created = await sandbox.create_page({"Title": {"title": [{"text": {"content": "Fresh"}}]}})
    await receiver.wait_for(_count(1))
    await sandbox.delete_page(created["id"])
    await receiver.wait_for(_count(2))
    assert [e["type"] for e in receiver.events] == ["page.created", "page.deleted"]
    assert all(e["entity"]["id"] == created["id"] for e in receiver.events)
    assert "updated_properties" not in receiver.events[0]["data"]


async def test_event_types_limit_what_a_subscription_receives(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    await sandbox.reset(rps=1000, burst=1000, webhook_window_ms=20)
    await sandbox.subscribe(receiver.url, event_types=["page.created"], verified=True)
    page = (await sandbox.pages())[0]
    await sandbox.edit([page["id"]], {"Status": {"status": {"name": "Queued"}}})
    await sandbox.create_page({"Title": {"title": [{"text": {"content": "Only this"}}]}})
    await receiver.wait_for(_count(1))
    await wait_for_stats(sandbox, lambda s: s["webhooks"]["delivered"] == 1)
    assert [e["type"] for e in receiver.events] == ["page.created"]


async def test_duplicate_rate_one_sends_every_event_twice_with_the_same_id(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    await _subscribed(sandbox, receiver, webhook_window_ms=20)
    await sandbox.set_faults(webhook_duplicate_rate=1.0)
    ids = [p["id"] for p in await sandbox.pages()][:3]
    await sandbox.edit(ids, {"Status": {"status": {"name": "Queued"}}})
    await receiver.wait_for(_count(6))
    event_ids = [e["id"] for e in receiver.events]
    assert len(set(event_ids)) == 3
    assert all(event_ids.count(i) == 2 for i in event_ids)
    assert (await sandbox.stats())["webhooks"]["duplicated"] == 3


async def test_drop_rate_one_sends_nothing(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    await _subscribed(sandbox, receiver, webhook_window_ms=20)
    await sandbox.set_faults(webhook_drop_rate=1.0)
    ids = [p["id"] for p in await sandbox.pages()][:4]
    await sandbox.edit(ids, {"Status": {"status": {"name": "Queued"}}})
    stats = await wait_for_stats(sandbox, lambda s: s["webhooks"]["dropped"] == 4)
    assert stats["webhooks"]["sent"] == 0
    assert receiver.events == []


async def test_a_non_2xx_answer_is_retried_with_the_next_attempt_number(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    await _subscribed(sandbox, receiver, webhook_window_ms=20, webhook_retry_scale=0.0001)
    receiver.answers = [500, 503]
    page = (await sandbox.pages())[0]
    await sandbox.edit([page["id"]], {"Status": {"status": {"name": "Queued"}}})
    await receiver.wait_for(_count(3))
    events = receiver.events
    assert [e["attempt_number"] for e in events] == [1, 2, 3]
    assert len({e["id"] for e in events}) == 1
    stats = await wait_for_stats(sandbox, lambda s: s["webhooks"]["delivered"] == 1)
    assert stats["webhooks"]["failed"] == 2
    assert stats["webhooks"]["retried"] == 2


async def test_reordering_and_delay_still_deliver_every_event(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    await _subscribed(sandbox, receiver, webhook_window_ms=20)
    await sandbox.set_faults(webhook_reorder=True, webhook_delay_ms=[0, 100])
    ids = [p["id"] for p in await sandbox.pages()]
    await sandbox.edit(ids, {"Status": {"status": {"name": "Queued"}}})
    await receiver.wait_for(_count(20))
    assert sorted(e["entity"]["id"] for e in receiver.events) == sorted(ids)


async def test_events_go_to_every_subscription_with_its_own_signature(
    sandbox: SandboxAdmin, receiver: WebhookReceiver
) -> None:
    first = await _subscribed(sandbox, receiver, webhook_window_ms=20)
    second = await sandbox.subscribe(receiver.url, verified=True)
    page = (await sandbox.pages())[0]
    await sandbox.edit([page["id"]], {"Status": {"status": {"name": "Queued"}}})
    await receiver.wait_for(_count(2))
    by_subscription = {e["subscription_id"] for e in receiver.events}
    assert by_subscription == {first["id"], second["id"]}
    tokens = {first["id"]: first["verification_token"], second["id"]: second["verification_token"]}
    for delivery in receiver.deliveries[2:]:
        key = tokens[delivery.body["subscription_id"]].encode()
        digest = hmac.new(key, delivery.raw, hashlib.sha256).hexdigest()
        assert delivery.headers["x-notion-signature"] == f"sha256={digest}"


async def test_an_unreachable_url_reports_no_handshake_status(sandbox: SandboxAdmin) -> None:
    subscription = await sandbox.subscribe("http://127.0.0.1:9/nowhere")
    assert subscription["handshake_status"] is None
