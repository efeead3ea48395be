"""A NOTION_WEBHOOK_TOKEN that Notion does not sign with is named, with its fix, in the log."""

from __future__ import annotations

import structlog
from pydantic import SecretStr

from reelqueue.ingest.webhook_tokens import token_id
from reelqueue.sandbox import SandboxAdmin
from reelqueue.web.webhook_keys import CONFIGURED_HINT
from tests.fixtures.service import StartService, ready
from tests.web.helpers import deliver, handshake
from tests.web.test_webhook_tokens import refusals

CONFIGURED = "secret_pasted_from_the_wrong_subscription"
NOTIONS = "secret_notion_actually_signs_with"


async def test_deliveries_signed_by_the_handshake_say_notion_webhook_token_is_wrong(
    sandbox: SandboxAdmin, start_service: StartService
) -> None:
    service = await start_service(notion_webhook_token=SecretStr(CONFIGURED))
    await ready(service)
    page = (await sandbox.pages())[0]["id"]
    with structlog.testing.capture_logs() as logs:
        assert (await handshake(service, NOTIONS)).status_code == 200
        for _ in range(3):
            assert (await deliver(service, NOTIONS, "sub-a", page)).status_code == 401
    (refusal,) = refusals(logs)
    assert refusal["event"] == (
        "webhook refused: a new subscription's handshake is waiting: if you created it, run "
        f"`reelqueue webhook token --accept {token_id(NOTIONS)}`" + CONFIGURED_HINT
    )
    assert refusal["refused_since_last_line"] == 0
    assert CONFIGURED not in repr(logs)
    assert NOTIONS not in repr(logs)
