"""PATCH /v1/data_sources/{id} with in_trash (or archived) and parent: trash, restore, move."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from notion_client import APIErrorCode, APIResponseError, AsyncClient

from reelqueue.sandbox import SandboxAdmin
from tests.sandbox.conftest import WebhookReceiver

NEWEST = "2026-03-11"


def _path(sandbox: SandboxAdmin) -> str:
    return f"/v1/data_sources/{sandbox.data_source_id}"


async def _refused(call: Any) -> APIResponseError:
    with pytest.raises(APIResponseError) as refused:
        await call
    return refused.value


async def test_a_trashed_data_source_answers_get_and_refuses_other_work_until_restored(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    source_id = fast_sandbox.data_source_id
    trashed = await notion.data_sources.update(data_source_id=source_id, in_trash=True)
    assert (trashed["in_trash"], trashed["archived"]) == (True, True)
    found = await notion.data_sources.retrieve(data_source_id=source_id)
    assert found["in_trash"] is True
    title = found["title"][0]["plain_text"]

    query = await _refused(notion.data_sources.query(data_source_id=source_id))
    rename = await _refused(
        notion.data_sources.update(
            data_source_id=source_id, title=[{"text": {"content": "Renamed"}}]
        )
    )
    create = await _refused(
        notion.pages.create(
            parent={"data_source_id": source_id},
            properties={"Title": {"title": [{"text": {"content": "New video"}}]}},
        )
    )
    page = (await fast_sandbox.pages())[0]
    edit = await _refused(
        notion.pages.update(
            page_id=page["id"], properties={"Status": {"status": {"name": "Queued"}}}
        )
    )
    for error in (query, rename, create, edit):
        assert (error.status, error.code) == (400, APIErrorCode.ValidationError)
        assert "the sandbox does not model" in str(error)
        assert "in_trash false" in str(error)
    still = await notion.data_sources.retrieve(data_source_id=source_id)
    assert still["title"][0]["plain_text"] == title
    unchanged = await notion.pages.retrieve(page_id=page["id"])
    assert unchanged["properties"]["Status"] == page["properties"]["Status"]

    restored = await notion.data_sources.update(
        data_source_id=source_id, in_trash=False, title=[{"text": {"content": "Renamed"}}]
    )
    assert (restored["in_trash"], restored["title"][0]["plain_text"]) == (False, "Renamed")
    pages = await notion.data_sources.query(data_source_id=source_id)
    assert pages["results"]


async def test_archived_trashes_before_2026_03_11_and_is_refused_from_then_on(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    newest = {"Notion-Version": NEWEST}
    refused = await raw.patch(_path(fast_sandbox), json={"archived": True}, headers=newest)
    assert (refused.status_code, refused.json()["code"]) == (400, "validation_error")
    assert "body.archived should be not present" in refused.json()["message"]
    untouched = (await raw.get(_path(fast_sandbox), headers=newest)).json()
    assert untouched["in_trash"] is False
    assert "archived" not in untouched

    trashed = await raw.patch(_path(fast_sandbox), json={"archived": True})
    assert trashed.status_code == 200, trashed.text
    answer = (await raw.get(_path(fast_sandbox), headers=newest)).json()
    assert answer["in_trash"] is True

    bad = await raw.patch(_path(fast_sandbox), json={"in_trash": "yes"})
    assert (bad.status_code, bad.json()["code"]) == (400, "validation_error")


async def test_trashing_and_restoring_send_data_source_deleted_and_undeleted(
    sandbox: SandboxAdmin, receiver: WebhookReceiver, raw: httpx.AsyncClient
) -> None:
    await sandbox.reset(rps=1000.0, burst=1000, webhook_window_ms=20)
    await sandbox.subscribe(receiver.url, verified=True)
    parent = (await raw.get(_path(sandbox))).json()["database_parent"]["page_id"]
    for sent, flag in enumerate((True, False), start=1):
        answer = await raw.patch(_path(sandbox), json={"in_trash": flag})
        assert answer.status_code == 200, answer.text
        await receiver.wait_for(lambda hook, n=sent: len(hook.events) >= n)
    assert [e["type"] for e in receiver.events] == ["data_source.deleted", "data_source.undeleted"]
    for event in receiver.events:
        assert event["entity"] == {"id": sandbox.data_source_id, "type": "data_source"}
        assert event["data"] == {"parent": {"id": parent, "type": "page"}}
        assert event["authors"] == [{"id": sandbox.bot_user_id, "type": "bot"}]


async def test_moving_a_data_source_to_its_own_database_changes_nothing(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    before = await notion.data_sources.retrieve(data_source_id=fast_sandbox.data_source_id)
    answer = await notion.data_sources.update(
        data_source_id=fast_sandbox.data_source_id,
        parent={"type": "database_id", "database_id": fast_sandbox.database_id},
    )
    assert answer["parent"] == before["parent"]
    assert answer["properties"] == before["properties"]


async def test_moving_a_data_source_to_another_database_is_refused_as_not_modelled(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    other = await notion.databases.create(
        parent={"type": "page_id", "page_id": fast_sandbox.parent_page_id},
        title=[{"text": {"content": "Archive"}}],
    )
    error = await _refused(
        notion.data_sources.update(
            data_source_id=fast_sandbox.data_source_id,
            parent={"database_id": other["id"]},
        )
    )
    assert (error.status, error.code) == (400, APIErrorCode.ValidationError)
    assert "does not model moving a data source" in str(error)
    found = await notion.data_sources.retrieve(data_source_id=fast_sandbox.data_source_id)
    assert found["parent"] == {"type": "database_id", "database_id": fast_sandbox.database_id}


async def test_moving_to_an_unknown_database_is_notions_404(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    error = await _refused(
        notion.data_sources.update(
            data_source_id=fast_sandbox.data_source_id,
            parent={"type": "database_id", "database_id": "0" * 32},
        )
    )
    assert (error.status, error.code) == (404, APIErrorCode.ObjectNotFound)
    assert "Could not find database" in str(error)


@pytest.mark.parametrize(
    "parent",
    [
        pytest.param("a database", id="not an object"),
        pytest.param({"type": "page_id", "page_id": "0" * 32}, id="a page"),
        pytest.param({"database_id": "not-a-uuid"}, id="not a uuid"),
        pytest.param({"database_id": 7}, id="not a string"),
    ],
)
async def test_a_malformed_parent_is_a_validation_error(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient, parent: Any
) -> None:
    answer = await raw.patch(_path(fast_sandbox), json={"parent": parent})
    assert (answer.status_code, answer.json()["code"]) == (400, "validation_error")
    assert answer.json()["message"].startswith("body failed validation: body.parent")
