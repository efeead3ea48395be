"""The embedded server: created on first use, reused later, shared, stopped by the last user."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

HOLD = """
import sys, pathlib
from reelqueue.db import start_embedded_server
print(start_embedded_server(pathlib.Path(sys.argv[1])), flush=True)
sys.stdin.read()
"""


def _postmaster_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "postgres" / "postmaster.pid"
    if not pid_file.exists():
        return None
    return int(pid_file.read_text().splitlines()[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _hold(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def _sql(uri: str, statement: str) -> object:
    async def go() -> object:
        conn = await asyncpg.connect(uri)
        try:
            return await conn.fetchval(statement)
        finally:
            await conn.close()

    return asyncio.run(go())


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0


@pytest.mark.timeout(120)
def test_shared_by_processes_and_stopped_by_the_last(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first, uri_a = _hold(data_dir)
    assert (data_dir / "postgres" / "PG_VERSION").exists()
    pid = _postmaster_pid(data_dir)
    assert pid is not None
    assert _alive(pid)
    _sql(uri_a, "CREATE TABLE kept AS SELECT 42 AS x")

    second, uri_b = _hold(data_dir)
    assert uri_a == uri_b
    assert _postmaster_pid(data_dir) == pid

    _release(first)
    assert _alive(pid), "the server stopped while another process still used it"
    _release(second)
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the server outlived its last user"

    third, uri_c = _hold(data_dir)
    try:
        assert _sql(uri_c, "SELECT x FROM kept") == 42, "a later run lost the data"
        new_pid = _postmaster_pid(data_dir)
        assert new_pid is not None
        assert new_pid != pid
    finally:
        _release(third)
