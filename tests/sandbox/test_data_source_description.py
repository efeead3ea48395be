"""PATCH /v1/data_sources/{id} with a description, as Notion's API takes it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from notion_client import AsyncClient

from reelqueue.sandbox import SandboxAdmin


def text(content: str) -> dict[str, Any]:
    return {"type": "text", "text": {"content": content}}


async def test_a_description_is_replaced_and_read_back(
    fast_sandbox: SandboxAdmin, notion: AsyncClient, raw: httpx.AsyncClient
) -> None:
    path = f"/v1/data_sources/{fast_sandbox.data_source_id}"
    description = [text("Our calendar.\n"), text("[a second line]")]
    assert (await raw.patch(path, json={"description": description})).status_code == 200
    found = await notion.data_sources.retrieve(data_source_id=fast_sandbox.data_source_id)
    assert [e["plain_text"] for e in found["description"]] == ["Our calendar.\n", "[a second line]"]
    assert found["properties"]["Status"]["type"] == "status", "the schema is untouched"


@pytest.mark.parametrize(
    "description",
    [
        pytest.param("plain string", id="not rich text"),
        pytest.param([text("x" * 2001)], id="text over 2000 characters"),
        pytest.param([text("x")] * 101, id="over 100 elements"),
    ],
)
async def test_a_malformed_description_is_a_400_and_changes_nothing(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient, description: Any
) -> None:
    path = f"/v1/data_sources/{fast_sandbox.data_source_id}"
    answer = await raw.patch(path, json={"description": description})
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "validation_error"
    assert (await raw.get(path)).json()["description"] == []
