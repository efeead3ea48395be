"""Connections: which server to use, the async engine, raw asyncpg connections.

Every way a connection can fail (a malformed URL, a wrong password, nothing listening, an
unknown host, a missing database) becomes one `DatabaseUnavailable` line naming the problem
and its fix, with the password never shown.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import asyncpg
import structlog
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    create_async_engine,
)

from reelqueue.config import Settings, default_data_dir
from reelqueue.db.embedded import embedded_cluster_exists, start_embedded_server
from reelqueue.errors import UserError

__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEFAULT_DATABASE",
    "DatabaseUnavailable",
    "check_database",
    "create_engine",
    "describe_database",
    "ensure_database",
    "libpq_url",
    "redacted_url",
    "resolve_database_url",
    "sqlalchemy_url",
    "with_database",
]

DEFAULT_DATABASE = "reelqueue"
CONNECT_TIMEOUT_S = 10.0
_EXAMPLE = "postgresql://user:password@host:5432/database"

log = structlog.get_logger(__name__)


class DatabaseUnavailable(UserError):
    """The database server could not be reached or refused us."""


def redacted_url(url: str) -> str:
    """The URL with its password replaced by ***, safe to print."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(a malformed URL)"
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def libpq_url(url: str) -> str:
    """The plain `postgresql://` form of a URL, as asyncpg and psql expect it.

    A URL that is not one (no scheme, another database, a port that is not a number)
    is a `DatabaseUnavailable` naming what to write instead.
    """
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        raise DatabaseUnavailable(f"DATABASE_URL is not a URL: write it as {_EXAMPLE}")
    if scheme.split("+")[0].lower() not in {"postgresql", "postgres"}:
        raise DatabaseUnavailable(
            f"DATABASE_URL must start with postgresql:// (got a {scheme}:// URL); "
            "reelqueue runs on PostgreSQL only"
        )
    plain = f"postgresql://{rest}"
    try:
        parts = urlsplit(plain)
        port = parts.port
    except ValueError:
        raise DatabaseUnavailable(
            f"DATABASE_URL has a port that is not a number from 1 to 65535 "
            f"({redacted_url(plain)}): write it as {_EXAMPLE}"
        ) from None
    if port == 0:
        raise DatabaseUnavailable(
            f"DATABASE_URL has port 0 ({redacted_url(plain)}): write it as {_EXAMPLE}"
        )
    return plain


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy form of a PostgreSQL URL, with the asyncpg driver."""
    return "postgresql+asyncpg://" + libpq_url(url).split("://", 1)[1]


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _server(url: str) -> str:
    """Where a URL's server is: host:port, or the socket directory."""
    parts = urlsplit(url)
    query_host = parse_qs(parts.query).get("host", [""])[0]
    host = parts.hostname or query_host or "localhost"
    if host.startswith("/"):
        return f"the socket in {host}"
    return f"{host}:{parts.port or 5432}"


def _database_name(url: str) -> str:
    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    return name or unquote(parts.username or "") or "postgres"


def describe_database(url: str) -> str:
    """`database NAME on SERVER`, with no password: for the first log line and errors."""
    return f"database {_database_name(url)} on {_server(url)}"


def _createdb_command(url: str) -> str:
    parts = urlsplit(url)
    flags = []
    if parts.hostname:
        flags += ["-h", parts.hostname]
    if parts.port:
        flags += ["-p", str(parts.port)]
    if parts.username:
        flags += ["-U", unquote(parts.username)]
    return " ".join(["createdb", *flags, _database_name(url)])


def _explain(url: str, exc: BaseException) -> str:
    """One line naming why a connection failed and the fix; never the password."""
    where = _server(url)
    user = unquote(urlsplit(url).username or "") or "postgres"
    name = _database_name(url)
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return (
            f"DATABASE_URL: password authentication failed for user {user!r} at {where}: "
            "fix the user name or password in DATABASE_URL (URL-encode @ : / % in it)"
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return (
            f"DATABASE_URL: database {name!r} does not exist at {where}: create it with "
            f"{_createdb_command(url)}, or fix the database name in DATABASE_URL"
        )
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return (
            f"DATABASE_URL: {where} refused user {user!r} ({exc}): fix the user in "
            "DATABASE_URL, or let it in (CREATE ROLE, pg_hba.conf)"
        )
    if isinstance(exc, asyncpg.PostgresError):
        return f"DATABASE_URL: PostgreSQL at {where} refused the connection ({exc})"
    if isinstance(exc, socket.gaierror):
        host = urlsplit(url).hostname or "localhost"
        return f"DATABASE_URL: unknown host {host!r}: fix the host name in DATABASE_URL"
    if isinstance(exc, TimeoutError):
        return (
            f"DATABASE_URL: no answer from {where} within {CONNECT_TIMEOUT_S:g} s: check the "
            "host, the port and any firewall between here and it"
        )
    if isinstance(exc, FileNotFoundError) or where.startswith("the socket"):
        return (
            f"DATABASE_URL: no PostgreSQL listens on {where}: start it, or fix the host "
            "in DATABASE_URL"
        )
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc):
        return (
            f"DATABASE_URL: nothing accepts connections at {where} (connection refused): "
            "start PostgreSQL there, or fix the host and port in DATABASE_URL"
        )
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
    return f"DATABASE_URL: cannot connect to {where} ({reason}): check the host and port"


async def _connect(url: str) -> asyncpg.Connection:
    """An asyncpg connection, or `DatabaseUnavailable` explaining why not."""
    try:
        return await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(_explain(url, exc)) from None
    except asyncpg.InterfaceError as exc:
        raise DatabaseUnavailable(
            f"DATABASE_URL: {_server(url)} does not speak PostgreSQL as expected ({exc})"
        ) from None


async def check_database(url: str) -> None:
    """Connect once, so a wrong URL is one clear line before anything else starts."""
    conn = await _connect(url)
    await conn.close()


async def ensure_database(server_url: str, database: str, *, create: bool = True) -> str:
    """The URL of `database` on the server, creating it if missing (unless not `create`)."""
    conn = await _connect(libpq_url(server_url))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            if not create:
                raise DatabaseUnavailable(
                    f"{describe_database(with_database(server_url, database))} does not exist: "
                    "nothing has run on this deployment yet; start `reelqueue run` (or "
                    "`reelqueue db upgrade`) first, or set REELQUEUE_DATA_DIR or DATABASE_URL "
                    "to the deployment's"
                )
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return with_database(libpq_url(server_url), database)


def _no_cluster(data_dir: Path, old_home: Path | None) -> DatabaseUnavailable:
    if old_home is not None:
        return DatabaseUnavailable(
            f"no reelqueue database in {data_dir}, the default home, but there is one in "
            f"{old_home} (the old default): set REELQUEUE_DATA_DIR={old_home} to use it"
        )
    return DatabaseUnavailable(
        f"no reelqueue database in {data_dir} (REELQUEUE_DATA_DIR): nothing has run here "
        "yet; start `reelqueue run` (or `reelqueue db upgrade`) first, or set "
        "REELQUEUE_DATA_DIR or DATABASE_URL to the deployment's"
    )


async def resolve_database_url(settings: Settings, *, create: bool = True) -> str:
    """DATABASE_URL when set (checked by connecting); otherwise the embedded server's.

    Logs which database it is as the command's first line. Unless `create`, an embedded
    server or database that does not exist yet is an error instead of being made.
    """
    if settings.database_url:
        url = libpq_url(settings.database_url)
        await check_database(url)
        log.info(f"using {describe_database(url)} (DATABASE_URL)", database=redacted_url(url))
        return url
    data_dir = settings.data_dir.expanduser().resolve()
    old_home = _old_default_home(data_dir)
    if not create and not embedded_cluster_exists(data_dir):
        raise _no_cluster(data_dir, old_home)
    server = start_embedded_server(data_dir)
    url = await ensure_database(server, DEFAULT_DATABASE, create=create)
    log.info(
        f"using database {DEFAULT_DATABASE} on the embedded PostgreSQL in {data_dir / 'postgres'}",
        database=url,
    )
    if old_home is not None:
        log.warning(
            f"an older reelqueue database is in {old_home}, which is no longer the default "
            f"home: to keep using it, set REELQUEUE_DATA_DIR={old_home}"
        )
    return url


def _old_default_home(data_dir: Path) -> Path | None:
    """./.reelqueue when it holds a cluster and the default home does not (its old default)."""
    old = Path(".reelqueue").resolve()
    if data_dir != default_data_dir().resolve() or old == data_dir:
        return None
    if embedded_cluster_exists(data_dir) or not embedded_cluster_exists(old):
        return None
    return old


def create_engine(url: str, *, pool_size: int = 5, pre_ping: bool = True) -> AsyncEngine:
    """An async engine on asyncpg with a small pool.

    `pre_ping` checks each connection before use (a round trip); a caller that retries
    on database errors anyway, such as a worker, can do without it.
    """
    return create_async_engine(
        sqlalchemy_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=pre_ping
    )
