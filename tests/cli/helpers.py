"""Run the real `reelqueue` command in a subprocess, as a person or a supervisor would."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.config import DEFAULT_CHANNELS
from reelqueue.ingest import PageSnapshot, Reactor
from reelqueue.sandbox import SandboxAdmin
from reelqueue.statuses import StatusTable

CHANNELS_YAML = """\
channels:
  - id: science
    name: Science Explained
  - id: history
    name: History Retold
"""


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment for the command: no inherited reelqueue or Notion settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NOTION_", "REELQUEUE_", "DATABASE_URL"))
    }
    env["REELQUEUE_DATA_DIR"] = str(tmp_path / "data")
    env["REELQUEUE_LOG_FORMAT"] = "json"
    env.update(extra)
    return env


def service_env(tmp_path: Path, sandbox: SandboxAdmin, database_url: str) -> dict[str, str]:
    """The environment of `reelqueue run` against the sandbox and the test's database."""
    channels = tmp_path / "channels.yaml"
    channels.write_text(CHANNELS_YAML)
    return cli_env(
        tmp_path,
        DATABASE_URL=database_url,
        NOTION_TOKEN=sandbox.token,
        NOTION_API_URL=sandbox.base_url,
        NOTION_DATABASE_IDS=sandbox.database_id,
        REELQUEUE_CHANNELS=str(channels),
        REELQUEUE_POLL_INTERVAL="2",
    )


def reelqueue(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run one command to its end."""
    return subprocess.run(
        [sys.executable, "-m", "reelqueue", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class LoggedProcess:
    """A `reelqueue` subprocess whose stderr is collected; `found` holds `pattern`'s first match."""

    def __init__(self, args: list[str], env: dict[str, str], pattern: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reelqueue", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.found: str | None = None
        self._settled = threading.Event()  # set at the match, or when the output ends
        self._pattern = re.compile(pattern)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            match = self._pattern.search(line)
            if match and self.found is None:
                self.found = match.group(1)
                self._settled.set()
        self._settled.set()

    def wait_found(self, within_s: float = 60) -> str:
        """The pattern's match, once the process printed it (fails if it exits first)."""
        self._settled.wait(within_s)
        if self.found is None:
            raise AssertionError("reelqueue did not start:\n" + "".join(self.lines))
        return self.found

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the process (if still running) and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class RunningService(LoggedProcess):
    """A `reelqueue run` process; its web app's URL is read from its output."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(["run", "--port", "0"], env, r"serving on (http://\S+)")

    def url(self, within_s: float = 60) -> str:
        """The web app's base URL, once the process says it serves."""
        return self.wait_found(within_s)


def one_line_error(stderr: str) -> str:
    """The one line a mistake prints (log lines, JSON under cli_env, aside); no traceback."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("{")]
    assert len(lines) == 1, stderr
    return lines[0]


def log_lines(stderr: str) -> list[dict[str, Any]]:
    """The JSON log lines a command printed (cli_env asks for JSON)."""
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


async def seed_tasks(engine: AsyncEngine) -> None:
    pages = [
        PageSnapshot(
            page_id=f"00000000-0000-4000-8000-{i:012d}",
            data_source_id="ds",
            last_edited_time=None,
            last_edited_by="person",
            in_trash=False,
            title=f"Video {i}",
            channel=channel,
            topic="A topic",
            story_direction="",
            status_label="Queued",
            priority_label="High" if i == 0 else None,
            error_log="",
            youtube_url=None,
        )
        for i, channel in enumerate(["science", "science", "history"])
    ]
    async with engine.begin() as conn:
        await Reactor(StatusTable(), DEFAULT_CHANNELS).react(conn, pages)
