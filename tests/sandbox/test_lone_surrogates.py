"""Text holding a lone UTF-16 surrogate: Notion (JavaScript) stores it and sends it back escaped."""

from __future__ import annotations

import json

import httpx

from reelqueue.sandbox import SandboxAdmin

LONE = "Bad \ud800 title"


async def test_a_lone_surrogate_is_stored_and_answered_escaped(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    page = (await fast_sandbox.pages())[0]
    body = {"properties": {"Title": {"title": [{"text": {"content": LONE}}]}}}
    # json.dumps escapes the surrogate as \ud800, as a JavaScript client would send it.
    written = await raw.patch(
        f"/v1/pages/{page['id']}",
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    assert written.status_code == 200, written.text
    assert b"\\ud800" in written.content
    read = await raw.get(f"/v1/pages/{page['id']}")
    assert read.status_code == 200
    title = json.loads(read.content)["properties"]["Title"]["title"][0]["plain_text"]
    assert title == LONE
