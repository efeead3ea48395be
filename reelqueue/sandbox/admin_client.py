"""An async client of the sandbox's admin API, for tests, the demo and the benchmarks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import httpx


class SandboxAdminError(RuntimeError):
    """The admin API refused a request; the message is its answer."""


class SandboxAdmin:
    """Drives a running sandbox's /_sandbox/ API; `info` fields are refreshed by `reset`.

    Use `async with SandboxAdmin(base_url) as admin:` or call `aclose()` when done.
    """

    def __init__(self, base_url: str, client: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.AsyncClient(timeout=30.0, trust_env=False)
        self._info: dict[str, Any] | None = None

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = await self._client.request(method, f"{self.base_url}/_sandbox/{path}", json=body)
        if response.is_error:
            raise SandboxAdminError(
                f"{method} /_sandbox/{path}: {response.status_code} {response.text}"
            )
        return response.json()

    def _field(self, key: str) -> Any:
        if self._info is None:
            raise RuntimeError("call `await admin.info()` or `await admin.reset()` first")
        return self._info[key]

    @property
    def token(self) -> str:
        """The bearer token the sandbox accepts."""
        return str(self._field("token"))

    @property
    def database_id(self) -> str:
        """The calendar's database id."""
        return str(self._field("database_ids")[0])

    @property
    def data_source_id(self) -> str:
        """The calendar's data source id."""
        return str(self._field("data_source_ids")[0])

    @property
    def bot_user_id(self) -> str:
        """The integration's bot user id (the author of API writes)."""
        return str(self._field("bot_user_id"))

    @property
    def person_user_id(self) -> str:
        """The person editing the board through the admin API."""
        return str(self._field("person_user_id"))

    @property
    def parent_page_id(self) -> str:
        """The page shared with the integration under which POST /v1/databases may create."""
        return str(self._field("parent_page_id"))

    async def info(self) -> dict[str, Any]:
        """GET /_sandbox/info (and remember it)."""
        self._info = await self._call("GET", "info")
        return self._info

    async def reset(self, **options: Any) -> dict[str, Any]:
        """POST /_sandbox/reset: videos, channels, status_type, status_options (`{"name",
        "group"}` objects or (name, group) pairs), webhook_window_ms, ... and the request
        limits (rate_model, budget, window_s, rps, burst, workspace_budget,
        workspace_window_s, latency_ms: a number or a (low, high) pair)."""
        if isinstance(options.get("latency_ms"), tuple):
            options["latency_ms"] = list(options["latency_ms"])
        if "channels" in options:
            options["channels"] = list(options["channels"])
        if isinstance(options.get("status_options"), list | tuple):
            options["status_options"] = [
                o if isinstance(o, Mapping) else {"name": o[0], "group": o[1]}
                for o in options["status_options"]
            ]
        self._info = await self._call("POST", "reset", options)
        return self._info

    async def edit(
        self, page_ids: Iterable[str], properties: dict[str, Any], author: str = "person"
    ) -> list[dict[str, Any]]:
        """POST /_sandbox/edit: change pages as a person on the board; the pages after."""
        body = {"page_ids": list(page_ids), "properties": properties, "author": author}
        answer = await self._call("POST", "edit", body)
        return list(answer["pages"])

    async def set_faults(self, **faults: Any) -> dict[str, Any]:
        """POST /_sandbox/faults: replace the fault set (no arguments clears it); hung requests
        are released."""
        result: dict[str, Any] = await self._call("POST", "faults", faults)
        return result

    async def subscribe(
        self, url: str, event_types: Iterable[str] | None = None, *, verified: bool = False
    ) -> dict[str, Any]:
        """POST /_sandbox/subscriptions: the subscription, after its handshake was sent.

        Like Notion's, it sends nothing more until verified: pass `verified=True`, or call
        `verify` with the token the handshake carried.
        """
        body: dict[str, Any] = {"url": url, "verified": verified}
        if event_types is not None:
            body["event_types"] = list(event_types)
        result: dict[str, Any] = await self._call("POST", "subscriptions", body)
        return result

    async def verify(self, subscription_id: str, verification_token: str) -> dict[str, Any]:
        """POST /_sandbox/subscriptions/{id}/verify: Notion's Verify button; events flow after."""
        body = {"verification_token": verification_token}
        result: dict[str, Any] = await self._call(
            "POST", f"subscriptions/{subscription_id}/verify", body
        )
        return result

    async def stats(self) -> dict[str, Any]:
        """GET /_sandbox/stats."""
        result: dict[str, Any] = await self._call("GET", "stats")
        return result

    async def pages(self) -> list[dict[str, Any]]:
        """GET /_sandbox/pages: every page as a Notion page object."""
        return list((await self._call("GET", "pages"))["pages"])

    async def unshare(self, page_ids: Iterable[str]) -> None:
        """POST /_sandbox/unshare: the pages now 404 for the integration."""
        await self._call("POST", "unshare", {"page_ids": list(page_ids)})

    async def create_page(
        self, properties: dict[str, Any], author: str = "person"
    ) -> dict[str, Any]:
        """POST /_sandbox/pages: a new page, created by the person (page.created)."""
        result: dict[str, Any] = await self._call(
            "POST", "pages", {"properties": properties, "author": author}
        )
        return result

    async def delete_page(self, page_id: str, author: str = "person") -> dict[str, Any]:
        """DELETE /_sandbox/pages/{id}: move the page to the trash (page.deleted)."""
        result: dict[str, Any] = await self._call("DELETE", f"pages/{page_id}", {"author": author})
        return result

    async def restore_page(self, page_id: str, author: str = "person") -> dict[str, Any]:
        """POST /_sandbox/pages/{id}/restore: take the page out of the trash (page.undeleted)."""
        result: dict[str, Any] = await self._call(
            "POST", f"pages/{page_id}/restore", {"author": author}
        )
        return result

    async def move_page(
        self, page_id: str, parent_page_id: str | None, author: str = "person"
    ) -> dict[str, Any]:
        """POST /_sandbox/pages/{id}/move: under a parent page, or back into the calendar (None)."""
        parent = (
            {"type": "page_id", "page_id": parent_page_id}
            if parent_page_id is not None
            else {"type": "data_source_id", "data_source_id": self.data_source_id}
        )
        result: dict[str, Any] = await self._call(
            "POST", f"pages/{page_id}/move", {"parent": parent, "author": author}
        )
        return result

    async def change_schema(
        self,
        properties: dict[str, Any],
        author: str = "person",
        data_source_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """PATCH /_sandbox/data_sources/{id}: rename (`{"name": ...}`) or remove (None) properties.

        The body is that of Notion's PATCH /v1/data_sources/{id}; sends
        data_source.schema_updated and returns its `updated_properties`.
        """
        target = data_source_id or self.data_source_id
        answer = await self._call(
            "PATCH", f"data_sources/{target}", {"properties": properties, "author": author}
        )
        return list(answer["updated_properties"])

    async def issue_token(self) -> str:
        """POST /_sandbox/tokens: another token (connection) of the same workspace."""
        return str((await self._call("POST", "tokens"))["token"])

    async def hold_workspace(self, retry_after_s: float) -> int:
        """POST /_sandbox/workspace_limit: 429 every request of the workspace for that long.

        Returns the whole seconds of the hold; 0 lifts it.
        """
        answer = await self._call("POST", "workspace_limit", {"retry_after_s": retry_after_s})
        return int(answer["retry_after_s"])

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def __aenter__(self) -> SandboxAdmin:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
