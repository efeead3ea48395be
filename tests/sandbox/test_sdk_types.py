"""Every sandbox answer and webhook body type-checks against the official JS SDK's types.

The bodies are captured over HTTP, written as TypeScript object literals annotated with the
`@notionhq/client` types pinned in tests/sdk_types, and checked by the pinned `tsc` (strict),
so an extra, missing or mistyped field fails the case that produced it. Adding an endpoint
is one `Call` line in CALLS; adding a webhook event is one line in WEBHOOKS.
Run alone: `.venv/bin/pytest tests/sandbox/test_sdk_types.py` (after `make sdk-types`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

from reelqueue.sandbox import SandboxAdmin, SandboxAdminError, SandboxServer
from tests.fixtures.sandbox import SANDBOX_DEFAULTS
from tests.sandbox.conftest import FAST, NOTION_VERSION, WebhookReceiver

NODE = shutil.which("node")
SDK_TYPES = Path(__file__).resolve().parents[1] / "sdk_types"
TSC = SDK_TYPES / "node_modules" / "typescript" / "bin" / "tsc"
MISSING_PAGE = "0c9d6a3e-58b1-4e0f-9a51-6b1f2f3d4e5f"

pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed: the official JS SDK's types cannot be checked"
)


@dataclass(frozen=True)
class Call:
    """One request to the sandbox, the status it must answer and the SDK type of its body.

    `{database_id}`, `{data_source_id}`, `{parent_page_id}` (the database's), `{page_id}` and
    `{title_id}` in the path, the query and the JSON body are filled in from the sandbox.
    """

    name: str
    method: str
    path: str
    ts_type: str
    status: int = 200
    body: Any = None
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    rate_limited: bool = False


DS = "/v1/data_sources/{data_source_id}"
TITLE = {"Title": {"title": [{"text": {"content": "Typed by the SDK"}}]}}
CALLS = [
    Call("users_me", "GET", "/v1/users/me", "Notion.GetSelfResponse"),
    Call("get_database", "GET", "/v1/databases/{database_id}", "Full<Notion.GetDatabaseResponse>"),
    Call(
        "patch_database",
        "PATCH",
        "/v1/databases/{database_id}",
        "Full<Notion.UpdateDatabaseResponse>",
        body={"description": [{"type": "text", "text": {"content": "Typed by the SDK"}}]},
    ),
    Call("get_data_source", "GET", DS, "Full<Notion.GetDataSourceResponse>"),
    Call(
        "patch_data_source",
        "PATCH",
        DS,
        "Full<Notion.UpdateDataSourceResponse>",
        body={"properties": {"SDK Notes": {"rich_text": {}}}},
    ),
    Call("query", "POST", f"{DS}/query", "FullPagesQuery", body={"page_size": 3}),
    Call(
        "query_filtered",
        "POST",
        f"{DS}/query",
        "FullPagesQuery",
        body={"filter": {"property": "Status", "status": {"equals": "Draft"}}, "page_size": 3},
    ),
    Call(
        "query_filter_properties",
        "POST",
        f"{DS}/query",
        "FullPagesQuery",
        body={"page_size": 3},
        query=(("filter_properties", "{title_id}"),),
    ),
    Call("get_page", "GET", "/v1/pages/{page_id}", "Full<Notion.GetPageResponse>"),
    Call(
        "patch_page",
        "PATCH",
        "/v1/pages/{page_id}",
        "Full<Notion.UpdatePageResponse>",
        body={"properties": {"Status": {"status": {"name": "Queued"}}}},
    ),
    Call(
        "create_page",
        "POST",
        "/v1/pages",
        "Full<Notion.CreatePageResponse>",
        body={"parent": {"type": "data_source_id", "data_source_id": "{data_source_id}"}}
        | {"properties": TITLE},
    ),
    Call(
        "create_database",
        "POST",
        "/v1/databases",
        "Full<Notion.CreateDatabaseResponse>",
        body={"parent": {"type": "page_id", "page_id": "{parent_page_id}"}}
        | {"title": [{"text": {"content": "SDK calendar"}}]}
        | {"initial_data_source": {"properties": {"Name": {"title": {}}}}},
    ),
    Call("error_400", "GET", "/v1/pages/not-a-uuid", "ErrorBody", status=400),
    Call(
        "error_401",
        "GET",
        "/v1/users/me",
        "ErrorBody",
        status=401,
        headers=(("Authorization", "Bearer secret_not_the_sandbox_token"),),
    ),
    Call("error_404", "GET", f"/v1/pages/{MISSING_PAGE}", "ErrorBody", status=404),
    Call("error_429", "GET", "/v1/users/me", "ErrorBody", status=429, rate_limited=True),
]

Trigger = Callable[["Capture"], Awaitable[None]]


async def _edit_status(capture: Capture) -> None:
    page = (await capture.admin.pages())[1]
    await capture.admin.edit([page["id"]], {"Status": {"status": {"name": "Queued"}}})


async def _create(capture: Capture) -> None:
    capture.created_id = (await capture.admin.create_page(TITLE))["id"]


async def _delete(capture: Capture) -> None:
    await capture.admin.delete_page(capture.created_id)


async def _restore(capture: Capture) -> None:
    answer = await capture.http.patch(f"/v1/pages/{capture.created_id}", json={"in_trash": False})
    answer.raise_for_status()


async def _move_out(capture: Capture) -> None:
    await capture.admin.move_page(capture.created_id, capture.ids["parent_page_id"])


async def _rename_property(capture: Capture) -> None:
    await capture.admin.change_schema({"SDK Notes": {"name": "SDK Remarks"}})


WEBHOOKS: list[tuple[str, Trigger]] = [
    ("page.properties_updated", _edit_status),
    ("page.created", _create),
    ("page.deleted", _delete),
    ("page.undeleted", _restore),
    ("page.moved", _move_out),
    ("data_source.schema_updated", _rename_property),
]

# Top-level keys Notion adds to every JSON answer that the SDK's response types leave out
# (the recorded query in notion-fixtures carries `request_id`; the SDK declares none).
NOT_IN_SDK_TYPES = ("request_id",)

# Mismatches between the sandbox and the SDK's types that are not fixed yet: case -> why.
KNOWN_MISMATCHES: dict[str, str] = {}


def webhook_case(event_type: str) -> str:
    """The case name of a webhook event type."""
    return "webhook_" + event_type.replace(".", "_")


def webhook_ts_type(event_type: str) -> str:
    """The SDK's payload type of an event: page.created -> Notion.PageCreatedWebhookPayload."""
    words = re.split(r"[._]", event_type)
    return "Notion." + "".join(w.capitalize() for w in words) + "WebhookPayload"


# The events the calls above cause on their own (of types no trigger is listed for).
OTHER_EVENTS = "webhook_other_events"
CASES = [c.name for c in CALLS] + [webhook_case(t) for t, _ in WEBHOOKS] + [OTHER_EVENTS]


@dataclass
class Captured:
    """A body the sandbox sent, the TS type it must satisfy, or why it could not be captured."""

    ts_type: str
    body: Any = None
    problem: str | None = None


class Capture:
    """Drives the sandbox through every call and webhook trigger, keeping each body."""

    def __init__(self, admin: SandboxAdmin, http: httpx.AsyncClient) -> None:
        self.admin = admin
        self.http = http
        self.ids: dict[str, str] = {}
        self.created_id = ""
        self.bodies: dict[str, Captured] = {}

    def fill(self, value: Any) -> Any:
        """`value` with the `{...}` placeholders of its strings filled in."""
        if isinstance(value, str):
            return value.format_map(self.ids)
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, tuple):
            return tuple(self.fill(v) for v in value)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value

    async def call(self, call: Call) -> None:
        """Send one call; keep its body, or a problem when the status is not the expected one."""
        answer = await self.http.request(
            call.method,
            self.fill(call.path),
            params=self.fill(call.query),
            headers=dict(call.headers),
            json=self.fill(call.body) if call.body is not None else None,
        )
        if call.rate_limited:
            for _ in range(5):
                if answer.status_code == 429:
                    break
                answer = await self.http.request(call.method, self.fill(call.path))
        self.keep(call.name, call.ts_type, answer, call.status)

    def keep(self, name: str, ts_type: str, answer: httpx.Response, status: int) -> None:
        """Record an answer's JSON body under `name`."""
        if answer.status_code != status:
            problem = f"{answer.request.method} {answer.request.url.path} answered "
            problem += f"{answer.status_code}, expected {status}: {answer.text[:500]}"
            self.bodies[name] = Captured(ts_type, problem=problem)
        else:
            body = answer.json()
            if answer.is_success and isinstance(body, dict):
                body = {k: v for k, v in body.items() if k not in NOT_IN_SDK_TYPES}
            self.bodies[name] = Captured(ts_type, body=body)


@contextlib.asynccontextmanager
async def serving(receiver: WebhookReceiver) -> AsyncIterator[None]:
    """Serve `receiver` on a free loopback port for the duration of the block."""
    app = Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections queue up until uvicorn accepts them: no start-up wait
    receiver.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


async def capture_all(base_url: str) -> dict[str, Captured]:
    """Every case's body: calls first, then webhook events, then the rate-limited calls."""
    async with SandboxAdmin(base_url) as admin:
        await admin.reset(**(SANDBOX_DEFAULTS | FAST | {"webhook_window_ms": 20}))
        headers = {"Authorization": f"Bearer {admin.token}", "Notion-Version": NOTION_VERSION}
        receiver = WebhookReceiver()
        async with (
            httpx.AsyncClient(
                base_url=base_url, headers=headers, timeout=10, trust_env=False
            ) as http,
            serving(receiver),
        ):
            capture = Capture(admin, http)
            page = (await admin.pages())[0]
            database = (await http.get(f"/v1/databases/{admin.database_id}")).json()
            capture.ids = {
                "database_id": admin.database_id,
                "data_source_id": admin.data_source_id,
                "parent_page_id": database["parent"]["page_id"],
                "page_id": page["id"],
                "title_id": page["properties"]["Title"]["id"],
            }
            try:
                subscription = await admin.subscribe(receiver.url)
                verify = getattr(admin, "verify", None)  # Notion's Verify button, where needed
                if verify is not None:
                    await verify(subscription["id"], subscription["verification_token"])
                for call in (c for c in CALLS if not c.rate_limited):
                    await capture.call(call)
                await capture_webhooks(capture, receiver)
                await tighten_rate_limit(admin)
                for call in (c for c in CALLS if c.rate_limited):
                    await capture.call(call)
            finally:
                await admin.reset(**SANDBOX_DEFAULTS)
    return capture.bodies


async def tighten_rate_limit(admin: SandboxAdmin) -> None:
    """Reset to a limit that refuses the second request (per-window budget, or token bucket)."""
    rate_keys = {"rate_model", "budget", "window_s", "rps", "burst"}
    base = {k: v for k, v in SANDBOX_DEFAULTS.items() if k not in rate_keys}
    try:
        await admin.reset(**(base | {"rate_model": "window", "budget": 1}))
    except SandboxAdminError:
        await admin.reset(**(base | {"rps": 0.01, "burst": 1}))


def has_event(event_type: str) -> Callable[[WebhookReceiver], bool]:
    """Whether a receiver has got an event of this type."""
    return lambda hook: any(e["type"] == event_type for e in hook.events)


async def capture_webhooks(capture: Capture, receiver: WebhookReceiver) -> None:
    """Fire each trigger and wait for its event; then keep every event received, by type."""
    missing: dict[str, str] = {}
    for event_type, trigger in WEBHOOKS:
        await trigger(capture)
        try:
            await receiver.wait_for(has_event(event_type))
        except TimeoutError:
            seen = sorted({e["type"] for e in receiver.events})
            missing[event_type] = f"no {event_type} event arrived within 5 s (got {seen})"
    triggered = {t for t, _ in WEBHOOKS}
    for event_type in triggered:
        events = [e for e in receiver.events if e["type"] == event_type]
        ts_type = f"Array<{webhook_ts_type(event_type)}>"
        problem = missing.get(event_type)
        capture.bodies[webhook_case(event_type)] = Captured(ts_type, events, problem)
    others = [e for e in receiver.events if e["type"] not in triggered]
    union = " | ".join(sorted({webhook_ts_type(e["type"]) for e in others})) or "never"
    capture.bodies[OTHER_EVENTS] = Captured(f"Array<{union}>", body=others)


HEADER = (
    "// Captured from the sandbox by tests/sandbox/test_sdk_types.py.\n"
    'import type * as Notion from "@notionhq/client";\n'
    'import type { ErrorBody, Full, FullPagesQuery } from "../../conformance";\n'
)


def declaration(name: str, ts_type: str, body: Any) -> str:
    """`body` as a TypeScript constant annotated with `ts_type` (an object literal, no cast)."""
    return f"export const {name}: {ts_type} = {json.dumps(body, indent=2, ensure_ascii=False)};\n"


@dataclass
class Checked:
    """What tsc said about each case, and where the generated files are."""

    folder: Path
    bodies: dict[str, Captured]
    errors: dict[str, list[str]]


TSC_LINE = re.compile(r"^(?P<file>[^\s(]+\.ts)\((?P<line>\d+),(?P<col>\d+)\): (?P<text>.*)$")


def tsc_errors(output: str, folder: Path) -> dict[str, list[str]]:
    """tsc's diagnostics grouped by generated module name, each with its source line."""
    errors: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in output.splitlines():
        match = TSC_LINE.match(raw)
        if match is None:
            if current is not None and raw.strip():
                current[-1] += "\n    " + raw.strip()
            else:
                errors.setdefault("", []).append(raw)
            continue
        path = (folder / match["file"]).resolve()
        key = path.stem if path.parent == folder.resolve() else ""
        current = errors.setdefault(key, [])
        source = ""
        if path.is_file():
            lines = path.read_text().splitlines()
            source = lines[int(match["line"]) - 1].strip()
        current.append(f"line {match['line']} `{source}`: {match['text']}")
    return {k: v for k, v in errors.items() if v}


def run_tsc(folder: Path) -> subprocess.CompletedProcess[str]:
    """The pinned tsc over the modules in `folder` (with the config of tests/sdk_types)."""
    assert NODE is not None
    return subprocess.run(
        [NODE, str(TSC), "-p", str(folder / "tsconfig.json"), "--pretty", "false"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=folder,
    )


def write_run_folder(bodies: dict[str, Captured], extra: dict[str, str]) -> Path:
    """A fresh folder under tests/sdk_types/generated with a module per captured body."""
    folder = SDK_TYPES / "generated" / f"run-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = {"extends": "../../tsconfig.json", "include": ["*.ts", "../../conformance.ts"]}
    (folder / "tsconfig.json").write_text(json.dumps(config, indent=2) + "\n")
    for name, captured in bodies.items():
        if captured.problem is None:
            source = HEADER + declaration(name, captured.ts_type, captured.body)
            (folder / f"{name}.ts").write_text(source)
    for name, source in extra.items():
        (folder / f"{name}.ts").write_text(source)
    return folder


def canary(page: dict[str, Any]) -> str:
    """A page with a field too many and a page with `url` missing: tsc must reject both."""
    extra = page | {"not_a_notion_field": True}
    missing = {k: v for k, v in page.items() if k != "url"}
    ts_type = "Full<Notion.GetPageResponse>"
    return HEADER + declaration("extra", ts_type, extra) + declaration("missing", ts_type, missing)


@pytest.fixture(scope="module")
def checked(sandbox_server: SandboxServer) -> Iterator[Checked]:
    """Capture every case once, type-check them all in one tsc run."""
    if not TSC.is_file():
        pytest.fail(
            f"{TSC.relative_to(SDK_TYPES.parents[1])} is missing: run `make sdk-types` "
            "(npm ci in tests/sdk_types) first"
        )
    bodies = asyncio.run(capture_all(sandbox_server.base_url))
    page = bodies["get_page"].body
    folder = write_run_folder(bodies, {"canary": canary(page)} if page else {})
    result = run_tsc(folder)
    output = result.stdout + result.stderr
    errors = tsc_errors(output, folder)
    if result.returncode != 0 and not errors:
        errors[""] = [output.strip() or f"tsc exited with {result.returncode} and said nothing"]
    yield Checked(folder, bodies, errors)
    if not any(k in errors for k in CASES) and "" not in errors:
        shutil.rmtree(folder, ignore_errors=True)


def _case(name: str) -> Any:
    reason = KNOWN_MISMATCHES.get(name)
    if reason is None:
        return name
    return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))


@pytest.mark.parametrize("case", [_case(name) for name in CASES])
def test_body_has_the_sdk_type(checked: Checked, case: str) -> None:
    captured = checked.bodies[case]
    assert captured.problem is None, captured.problem
    assert "" not in checked.errors, "tsc failed:\n" + "\n".join(checked.errors[""])
    errors = checked.errors.get(case, [])
    where = checked.folder / f"{case}.ts"
    assert not errors, f"{where} is not a {captured.ts_type}:\n" + "\n".join(errors)


def test_the_type_check_rejects_an_extra_and_a_missing_field(checked: Checked) -> None:
    found = "\n".join(checked.errors.get("canary", []))
    assert "not_a_notion_field" in found
    assert "'url' is missing" in found
