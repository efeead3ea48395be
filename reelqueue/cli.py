"""The `reelqueue` command line."""

from __future__ import annotations

import asyncio
import atexit
import errno
import functools
import gc
import json
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue import __version__
from reelqueue.config import Channels, Settings, load_channels, load_settings
from reelqueue.errors import UserError
from reelqueue.logs import configure_logging, register_secret
from reelqueue.statuses import GATES

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(
    name="reelqueue",
    help="Run a video production pipeline from a Notion content calendar.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database: migrations.", no_args_is_help=True)
notion_app = typer.Typer(help="The Notion connection.", no_args_is_help=True)
webhook_app = typer.Typer(help="Notion webhooks.", no_args_is_help=True)
tasks_app = typer.Typer(help="Tasks: list, retry, cancel, approve, history.")
app.add_typer(db_app, name="db")
app.add_typer(webhook_app, name="webhook")
app.add_typer(tasks_app, name="tasks")
app.add_typer(notion_app, name="notion")

err = Console(stderr=True, highlight=False, soft_wrap=True)


def _settings(**overrides: Any) -> Settings:
    """Load settings and set up logging so that no secret is ever printed."""
    settings = load_settings(**overrides)
    for secret in settings.secrets():
        register_secret(secret)
    configure_logging(settings.log_level, settings.log_format)
    return settings


async def _on_database(
    settings: Settings, action: Callable[[AsyncConnection], Awaitable[T]], *, write: bool = False
) -> T:
    """Run `action` on the deployment's existing database (in a transaction if `write`).

    Never creates a server or a database; only a command that changes tasks migrates.
    """
    from reelqueue.db import (
        create_engine,
        current_revision,
        head_revision,
        resolve_database_url,
        upgrade,
    )
    from reelqueue.db.engine import describe_database

    url = await resolve_database_url(settings, create=False)
    if write:
        await upgrade(url)
    elif await current_revision(url) != head_revision():
        raise UserError(
            f"{describe_database(url)} is not at this reelqueue's newest migration: "
            "run `reelqueue db upgrade` first"
        )
    engine = create_engine(url)
    try:
        if write:
            async with engine.begin() as conn:
                return await action(conn)
        async with engine.connect() as conn:
            return await action(conn)
    finally:
        await engine.dispose()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine on uvloop (a faster event loop) where it is available."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; this keeps other OSes working
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


@app.command()
def version() -> None:
    """Print reelqueue's version."""
    typer.echo(__version__)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply migrations up to REVISION (the newest by default)."""
    from reelqueue.db import current_revision, resolve_database_url, upgrade

    async def go() -> str | None:
        url = await resolve_database_url(_settings())
        await upgrade(url, revision)
        return await current_revision(url)

    typer.echo(f"database at revision {_run(go())}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision ('base' empties it).")],
) -> None:
    """Revert migrations down to REVISION."""
    from reelqueue.db import current_revision, downgrade, resolve_database_url

    async def go() -> str | None:
        url = await resolve_database_url(_settings(), create=False)
        await downgrade(url, revision)
        return await current_revision(url)

    typer.echo(f"database at revision {_run(go()) or 'base (empty)'}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision."""
    from reelqueue.db import current_revision, head_revision, resolve_database_url

    async def go() -> str | None:
        return await current_revision(await resolve_database_url(_settings(), create=False))

    current = _run(go())
    head = head_revision()
    state = "up to date" if current == head else f"behind (newest is {head})"
    typer.echo(f"{current or 'base (empty)'}: {state}")


def _channels(settings: Settings, *, steps: bool = False) -> Channels:
    """The channels file named by REELQUEUE_CHANNELS (required to run the service).

    With `steps`, the step sets are loaded too: a channel naming an unknown one, or a step
    cap naming an unknown step, is refused now rather than when a video reaches it.
    """
    if settings.channels_file is None:
        raise UserError(
            "REELQUEUE_CHANNELS is not set: point it at the channels file (YAML, see README)"
        )
    if not steps:
        return load_channels(settings.channels_file, gates=GATES)
    from reelqueue.pipeline import load_step_sets
    from reelqueue.pipeline.registry import check_step_caps

    check_step_caps(settings.step_caps)
    return load_channels(settings.channels_file, load_step_sets(settings.step_sets), GATES)


def _channels_if_set(settings: Settings) -> Channels | None:
    if settings.channels_file is None:
        return None
    return load_channels(settings.channels_file, gates=GATES)


def _check_port(host: str, port: int) -> None:
    """Refuse a port out of range, or one another program already listens on, in one line."""
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port} is not a port: use 1 to 65535, or 0 for any free one")
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UserError(
            f"--host {host!r} is not an address of this machine: use 127.0.0.1, 0.0.0.0 "
            "or one of its interfaces"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(
                    f"--port {port}: {host}:{port} is already in use (another `reelqueue run`?): "
                    "stop what listens there, or choose another --port"
                ) from None
            raise UserError(
                f"--host {host}: cannot listen there ({exc.strerror}): use 127.0.0.1, "
                "0.0.0.0 or an address of this machine"
            ) from None


@notion_app.command("check")
def notion_check() -> None:
    """Check NOTION_TOKEN and each calendar's properties and options; exit 1 if any is missing."""
    from reelqueue.service import check_notion

    settings = _settings()
    report = _run(check_notion(settings, _channels_if_set(settings)))
    for line in report.lines:
        typer.echo(line)
    if not report.complete:
        raise typer.Exit(1)


@notion_app.command("setup")
def notion_setup(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Change Notion without asking.")] = False,
) -> None:
    """Add the properties and options reelqueue needs; name what to add by hand (exit 1)."""
    from reelqueue.service import setup_notion

    settings = _settings()

    def confirm(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UserError("notion setup changes your Notion database: confirm with --yes")
        return typer.confirm(question, default=False)

    report = _run(setup_notion(settings, _channels(settings), confirm))
    for line in report.lines:
        typer.echo(line)
    if not report.complete:
        raise typer.Exit(1)


@notion_app.command("create-calendar")
def notion_create_calendar(
    parent: Annotated[
        str, typer.Option(help="The page (id or URL) to create it in, shared with the integration.")
    ],
    title: Annotated[str, typer.Option(help="The new database's title.")] = "Content Calendar",
) -> None:
    """Create a content calendar ready for reelqueue and print the NOTION_DATABASE_IDS line."""
    from reelqueue.service import create_calendar

    settings = _settings()
    report = _run(create_calendar(settings, _channels(settings), parent, title))
    for line in report.lines:
        typer.echo(line)


@webhook_app.command("token")
def webhook_token(
    accept: Annotated[
        str | None,
        typer.Option(metavar="ID", help="Accept a waiting token: its id (or the token itself)."),
    ] = None,
    forget: Annotated[
        str | None, typer.Option(metavar="ID", help="Drop a stored token: its id.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List webhook verification tokens per subscription and those waiting; accept or drop one.

    A token is shown in full until a delivery signed with it arrives: paste it into
    Notion's Verify form. A handshake that comes after a token is established waits
    for `--accept`, so a stranger's POST cannot take over the webhook.
    """
    from reelqueue.ingest.webhook_tokens import (
        TokenNotFound,
        accept_token,
        forget_token,
        load_tokens,
        token_id,
    )

    settings = _settings()
    try:
        if accept is not None:
            chosen = _run(_on_database(settings, lambda c: accept_token(c, accept), write=True))
            typer.echo(f"accepted {chosen.id}: deliveries signed with it are now taken")
            return
        if forget is not None:
            chosen = _run(_on_database(settings, lambda c: forget_token(c, forget), write=True))
            typer.echo(f"forgot {chosen.id}: deliveries signed with it are refused")
            return
    except TokenNotFound as exc:
        raise UserError(f"{exc}: see `reelqueue webhook token`") from None
    rows = [t.describe() for t in _run(_on_database(settings, load_tokens)).tokens]
    configured = settings.notion_webhook_token
    if configured is not None and configured.get_secret_value():
        rows.insert(0, {"id": token_id(configured.get_secret_value()), "state": "configured"})
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        raise UserError(
            "no verification token yet: create the webhook subscription in Notion with this "
            "server's /webhooks/notion URL while `reelqueue run` is serving"
        )
    for row in rows:
        head = f"{row['state']:<10} {row['id']}"
        if row["state"] == "configured":
            typer.echo(f"{head}  NOTION_WEBHOOK_TOKEN: deliveries signed with it are taken")
            continue
        for seen in row["subscriptions"]:
            workspace = seen["workspace_name"] or "?"
            typer.echo(
                f"{head}  subscription {seen['subscription_id']}  workspace {workspace} "
                f"({seen['workspace_id'] or '?'})  last delivery {seen['last_at']}"
            )
        if row["state"] == "candidate":
            typer.echo(
                f"{head}  received {row['received_at']}, waiting: if you created this "
                f"subscription, run `reelqueue webhook token --accept {row['id']}`"
            )
        elif not row["subscriptions"]:
            typer.echo(f"{head}  received {row['received_at']}, no delivery verified yet")
        if row["token"] is not None:
            typer.echo(f"{'':<10} {'':<12}  token for Notion's Verify form: {row['token']}")


@app.command()
def run(
    port: Annotated[int, typer.Option(help="Port of the web app (webhooks, health).")] = 8000,
    host: Annotated[str, typer.Option(help="Address of the web app.")] = "127.0.0.1",
    workers: Annotated[int, typer.Option(help="Steps run at once in this process.")] = 2,
) -> None:
    """Run the service: web app, workers, and (as leader) ingest and push-back."""
    if workers < 0:
        raise UserError(f"--workers {workers}: use 0 (no steps in this process) or more")
    _check_port(host, port)
    from reelqueue.db import resolve_database_url
    from reelqueue.service import Service, ServiceOptions, require_notion_settings

    settings = _settings()
    require_notion_settings(settings)
    channels = _channels(settings, steps=True)

    async def go() -> None:
        url = await resolve_database_url(settings)
        options = ServiceOptions(host=host, port=port, workers=workers)
        service = Service(settings, channels, database_url=url, options=options)
        stopping = _until_signalled()
        try:
            await service.start()
            err.print(f"reelqueue serving on {service.base_url} (Ctrl-C to stop)")
            await stopping.wait()
            err.print("reelqueue: stopping")
        finally:
            await service.stop()

    _run(go())


def _until_signalled() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    return stopping


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Steps run at once.")] = 4,
) -> None:
    """Run workers only (scale out on other machines with the same DATABASE_URL)."""
    from reelqueue.db import resolve_database_url, upgrade
    from reelqueue.pipeline import Worker, load_step_sets

    if concurrency < 1:
        raise UserError(f"--concurrency {concurrency}: use 1 or more")
    settings = _settings()
    channels = _channels(settings, steps=True)
    step_sets = load_step_sets(settings.step_sets)

    async def go() -> None:
        url = await resolve_database_url(settings)
        await upgrade(url)
        runner = Worker(url, settings, channels, step_sets, concurrency=concurrency)
        stopping = _until_signalled()
        err.print(f"reelqueue worker {runner.worker_id} running {concurrency} at once")
        await runner.run(stopping)
        err.print(f"reelqueue worker {runner.worker_id} stopped")

    _run(go())


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Counts of tasks by status and channel."""
    from reelqueue.queue import status_counts

    counts = _run(_on_database(_settings(), status_counts))
    if as_json:
        typer.echo(json.dumps([{"status": s, "channel": c, "count": n} for s, c, n in counts]))
        return
    table = Table("status", "channel", "tasks")
    for s, c, n in counts:
        table.add_row(s, c or "-", str(n))
    Console().print(table if counts else "no tasks yet")


@tasks_app.callback(invoke_without_command=True)
def tasks(
    context: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One row per task (or a subcommand: retry, cancel, approve, history)."""
    if context.invoked_subcommand is not None:
        return
    from reelqueue.queue import load_tasks
    from reelqueue.statuses import StatusTable, priority_label

    settings = _settings()
    if status is not None and status not in StatusTable():
        known = ", ".join(row.status for row in StatusTable())
        raise UserError(f"--status {status!r} is not a status; use one of {known}")
    found = _run(_on_database(settings, lambda conn: load_tasks(conn, status=status)))
    rows = [
        {
            "id": t.id,
            "notion_page_id": t.notion_page_id,
            "title": t.title,
            "channel": t.channel,
            "status": t.status,
            "priority": priority_label(t.priority),
            "attempts": t.attempts,
            "updated_at": t.updated_at.isoformat(),
        }
        for t in found
    ]
    columns = ("id", "title", "channel", "status", "priority", "attempts", "updated_at")
    _show(rows, dict(zip(columns, columns, strict=True)), as_json=as_json, empty="no tasks")


def _show(
    rows: list[dict[str, Any]], columns: dict[str, str], *, as_json: bool, empty: str
) -> None:
    """Rows as one JSON array, or as a table of `columns` (header: key; "-" for none)."""
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table(*columns)
    for row in rows:
        table.add_row(*("-" if row[key] is None else str(row[key]) for key in columns.values()))
    Console().print(table if rows else empty)


def _operate(
    ids: list[int], operation: Callable[[AsyncConnection, int, Any], Awaitable[str]]
) -> None:
    """Apply a task operation to each id, one transaction each; report each outcome."""
    from reelqueue.statuses import StatusTable

    settings = _settings()
    table = StatusTable(settings.status_labels)
    for task_id in ids:
        action = functools.partial(_apply, operation, task_id, table)
        outcome = _run(_on_database(settings, action, write=True))
        typer.echo(f"task {task_id}: {outcome}")


async def _apply(
    operation: Callable[[AsyncConnection, int, Any], Awaitable[str]],
    task_id: int,
    table: Any,
    conn: AsyncConnection,
) -> str:
    return await operation(conn, task_id, table)


@tasks_app.command("retry")
def tasks_retry(ids: Annotated[list[int], typer.Argument(help="Task ids.")]) -> None:
    """Queue tasks again; after an error each resumes at its failed step."""
    from reelqueue.queue import retry_task

    _operate(ids, retry_task)


@tasks_app.command("cancel")
def tasks_cancel(ids: Annotated[list[int], typer.Argument(help="Task ids.")]) -> None:
    """Cancel tasks; a running step is abandoned."""
    from reelqueue.queue import cancel_task

    _operate(ids, cancel_task)


@tasks_app.command("approve")
def tasks_approve(ids: Annotated[list[int], typer.Argument(help="Task ids.")]) -> None:
    """Open the review gate each task waits at."""
    from reelqueue.queue import approve_task

    _operate(ids, approve_task)


@tasks_app.command("history")
def tasks_history(
    task_id: Annotated[int, typer.Argument(help="Task id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every status change of one task: from, to, who, why, when."""
    from reelqueue.queue import task_history

    events = _run(_on_database(_settings(), lambda conn: task_history(conn, task_id)))
    rows = [
        {
            "from_status": e.from_status,
            "to_status": e.to_status,
            "actor": e.actor,
            "reason": e.reason,
            "at": e.created_at.isoformat(),
        }
        for e in events
    ]
    columns = {"at": "at", "from": "from_status", "to": "to_status", "actor": "actor",
               "reason": "reason"}  # fmt: skip
    _show(rows, columns, as_json=as_json, empty="no history")


@app.command()
def sandbox(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8765,
    videos: Annotated[int, typer.Option(help="Draft entries in the seeded calendar.")] = 20,
    channels: Annotated[str, typer.Option(help="Comma-separated channel ids.")] = "science,history",
    status_type: Annotated[
        str, typer.Option(help="Type of the Status property: status or select.")
    ] = "status",
    rate_model: Annotated[
        str,
        typer.Option(
            help="Per-token limit: window (Notion's current: a budget per window) or bucket "
            "(its older one: requests per second with bursts)."
        ),
    ] = "window",
    budget: Annotated[
        int | None, typer.Option(help="Window model: requests per window per token [180].")
    ] = None,
    window_s: Annotated[
        float | None, typer.Option(help="Window model: seconds of a window [60].")
    ] = None,
    rps: Annotated[
        float | None, typer.Option(help="Bucket model: requests per second per token [3].")
    ] = None,
    burst: Annotated[
        int | None, typer.Option(help="Bucket model: requests allowed at once above the rate [6].")
    ] = None,
    workspace_budget: Annotated[
        int, typer.Option(help="Requests per workspace window shared by all tokens (0: no limit).")
    ] = 1080,
    workspace_window_s: Annotated[
        float, typer.Option(help="Seconds of the workspace window.")
    ] = 120.0,
    latency_ms: Annotated[
        str, typer.Option(help="Time every /v1 request takes, in ms: 200, or a range 150-600.")
    ] = "0",
    token: Annotated[str, typer.Option(help="The token clients must send.")] = (
        "secret_sandbox_token"
    ),
) -> None:
    """Serve a local emulator of the Notion API, seeded with a content calendar."""
    from reelqueue.sandbox import SandboxConfig, serve, status_options
    from reelqueue.sandbox.ratelimit import parse_latency_text
    from reelqueue.statuses import StatusTable

    if status_type not in {"status", "select"}:
        raise UserError(f"--status-type must be 'status' or 'select' (got {status_type!r})")
    names = tuple(c.strip() for c in channels.split(",") if c.strip())
    if not names:
        raise UserError("--channels needs at least one channel id, e.g. science,history")
    if rate_model not in {"window", "bucket"}:
        raise UserError(f"--rate-model must be 'window' or 'bucket' (got {rate_model!r})")
    if rate_model == "window" and (rps is not None or burst is not None):
        raise UserError("--rps and --burst shape the bucket model: add --rate-model bucket")
    if rate_model == "bucket" and (budget is not None or window_s is not None):
        raise UserError("--budget and --window-s shape the window model: drop --rate-model bucket")
    try:
        config = SandboxConfig(
            port=port,
            videos=videos,
            channels=names,
            status_type=status_type,
            rate_model=rate_model,
            budget=180 if budget is None else budget,
            window_s=60.0 if window_s is None else window_s,
            rps=3.0 if rps is None else rps,
            burst=6 if burst is None else burst,
            workspace_budget=workspace_budget,
            workspace_window_s=workspace_window_s,
            latency_ms=parse_latency_text(latency_ms),
            token=token,
            status_options=status_options(StatusTable(load_settings().status_labels).groups()),
        )
    except ValueError as error:
        raise UserError(f"sandbox settings: {error}") from error
    configure_logging()
    serve(config)


@app.command()
def demo(
    videos: Annotated[int, typer.Option(help="Draft videos the creator sets to Queued.")] = 20,
    webhooks: Annotated[bool, typer.Option(help="Subscribe to the sandbox's webhooks.")] = True,
    faults: Annotated[
        bool, typer.Option(help="Inject 20% 5xx, duplicated, reordered and late webhooks.")
    ] = False,
    workers: Annotated[
        int, typer.Option(help="Steps run at once; 0 stops once the videos are queued.")
    ] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="End with the summary as JSON.")] = False,
) -> None:
    """Run everything locally: database, Notion sandbox, the service, and the creator's edit."""
    from reelqueue.demo import DemoOptions, run_demo

    if videos < 1:
        raise UserError("--videos must be at least 1")
    settings = load_settings()
    for secret in settings.secrets():
        register_secret(secret)
    level = settings.log_level if "REELQUEUE_LOG_LEVEL" in os.environ else "warning"
    configure_logging(level, settings.log_format)
    console = Console(stderr=as_json)
    if workers < 0:
        raise UserError("--workers must be 0 or more")
    options = DemoOptions(videos=videos, webhooks=webhooks, faults=faults, workers=workers)
    summary = _run(run_demo(settings, options, console))
    if as_json:
        typer.echo(summary.as_json())


def _refused_privilege(exc: BaseException) -> str | None:
    """PostgreSQL's message when the database user lacks a right reelqueue needs, if so."""
    import asyncpg

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, asyncpg.InsufficientPrivilegeError):
            return str(current)
        nested = getattr(current, "orig", None)
        current = (
            current.__cause__
            or current.__context__
            or (nested if isinstance(nested, BaseException) else None)
        )
    return None


def main() -> None:
    """Entry point: a user's mistake is one line on stderr and exit code 2, never a traceback."""
    # At exit the process's objects are left to the OS: the interpreter's final collection
    # over every loaded module took about 0.45 s of each stop.
    atexit.register(gc.freeze)
    try:
        app()
    except UserError as exc:
        err.print(f"reelqueue: error: {exc}")
        sys.exit(2)
    except Exception as exc:
        refused = _refused_privilege(exc)
        if refused is None:
            raise
        err.print(
            f"reelqueue: error: DATABASE_URL: the database refused ({refused}): its user must "
            "own the database or may create in its schema, e.g. GRANT CREATE ON SCHEMA public "
            "TO that user"
        )
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("reelqueue: interrupted")
        sys.exit(130)
