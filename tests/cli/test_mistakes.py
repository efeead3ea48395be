"""Every mistake a newcomer makes is one `reelqueue: error:` line with its fix, exit code 2.

Each case runs the real command in a subprocess and checks the exact line, that nothing
else but log lines was printed (no traceback), and that no password or token shows.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from reelqueue.notion import NotionClient
from reelqueue.sandbox import SandboxAdmin
from tests.cli.helpers import CHANNELS_YAML, cli_env, log_lines, one_line_error, reelqueue
from tests.cli.password_server import PASSWORD, PasswordServer, password_server
from tests.fixtures.sandbox import SANDBOX_DEFAULTS

TOKEN = "secret_newcomer_token_1234"
DATABASE_ID = "3839ce7b60a481c8867af81fd71aa55c"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PasswordServer]:
    with password_server(tmp_path_factory.mktemp("pw")) as running:
        yield running


def refused_all(cases: dict[str, tuple[list[str], dict[str, str]]]) -> dict[str, str]:
    """`refused` for several commands at once (each runs in its own process)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(refused, *case) for name, case in cases.items()}
        return {name: future.result() for name, future in futures.items()}


def refused(args: list[str], env: dict[str, str]) -> str:
    """The one error line of a command that must fail with exit code 2, secrets unseen."""
    result = reelqueue(*args, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    for secret in (PASSWORD, TOKEN):
        assert secret not in result.stdout + result.stderr
    return one_line_error(result.stderr)


DATABASE_URL_MISTAKES = {
    "password": (
        "postgresql://postgres:not-the-password@127.0.0.1:{port}/postgres",
        "DATABASE_URL: password authentication failed for user 'postgres' at "
        "127.0.0.1:{port}: fix the user name or password in DATABASE_URL "
        "(URL-encode @ : / % in it)",
    ),
    "database": (
        "postgresql://postgres:{password}@127.0.0.1:{port}/videos",
        "DATABASE_URL: database 'videos' does not exist at 127.0.0.1:{port}: create it "
        "with createdb -h 127.0.0.1 -p {port} -U postgres videos, or fix the database "
        "name in DATABASE_URL",
    ),
    "refused": (
        "postgresql://postgres:{password}@127.0.0.1:{closed}/postgres",
        "DATABASE_URL: nothing accepts connections at 127.0.0.1:{closed} (connection "
        "refused): start PostgreSQL there, or fix the host and port in DATABASE_URL",
    ),
    "host": (
        "postgresql://postgres:{password}@db.invalid:{port}/postgres",
        "DATABASE_URL: unknown host 'db.invalid': fix the host name in DATABASE_URL",
    ),
    "port": (
        "postgresql://postgres:{password}@127.0.0.1:54x2/postgres",
        "DATABASE_URL has a port that is not a number from 1 to 65535 "
        "(postgresql://postgres:***@127.0.0.1:54x2/postgres): write it as "
        "postgresql://user:password@host:5432/database",
    ),
    "not-a-url": (
        "postgres:{password}@127.0.0.1/postgres",
        "DATABASE_URL is not a URL: write it as postgresql://user:password@host:5432/database",
    ),
    "not-postgres": (
        "mysql://root:{password}@127.0.0.1/videos",
        "DATABASE_URL must start with postgresql:// (got a mysql:// URL); reelqueue runs "
        "on PostgreSQL only",
    ),
}


def test_a_wrong_database_url_names_the_problem_and_its_fix(
    server: PasswordServer, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    values = {"port": server.port, "password": PASSWORD, "closed": closed}
    cases = {
        name: (["status"], cli_env(tmp_path, DATABASE_URL=url.format(**values)))
        for name, (url, _) in DATABASE_URL_MISTAKES.items()
    }
    lines = refused_all(cases)
    for name, (_, expected) in DATABASE_URL_MISTAKES.items():
        assert lines[name] == "reelqueue: error: " + expected.format(**values), name


def test_the_first_log_line_names_the_database_without_its_password(
    server: PasswordServer, tmp_path: Path
) -> None:
    result = reelqueue("db", "upgrade", env=cli_env(tmp_path, DATABASE_URL=server.url()))
    assert result.returncode == 0, result.stderr
    first = log_lines(result.stderr)[0]
    assert first["event"] == f"using database postgres on 127.0.0.1:{server.port} (DATABASE_URL)"
    assert first["database"] == f"postgresql://postgres:***@127.0.0.1:{server.port}/postgres"
    assert PASSWORD not in result.stdout + result.stderr


def test_read_only_commands_never_create_a_database(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    data = tmp_path / "data"
    commands = {"status": ["status"], "tasks": ["tasks"], "db current": ["db", "current"]}
    lines = refused_all({name: (args, env) for name, args in commands.items()})
    for name in commands:
        assert lines[name] == (
            f"reelqueue: error: no reelqueue database in {data} (REELQUEUE_DATA_DIR): nothing "
            "has run here yet; start `reelqueue run` (or `reelqueue db upgrade`) first, or set "
            "REELQUEUE_DATA_DIR or DATABASE_URL to the deployment's"
        ), name
    assert not (data / "postgres").exists()


def run_env(tmp_path: Path, channels_yaml: str = CHANNELS_YAML, **extra: str) -> dict[str, str]:
    channels = tmp_path / "channels.yaml"
    channels.write_text(channels_yaml)
    return cli_env(
        tmp_path,
        NOTION_TOKEN=TOKEN,
        NOTION_DATABASE_IDS=DATABASE_ID,
        REELQUEUE_CHANNELS=str(channels),
        DATABASE_URL="postgresql://postgres@127.0.0.1:1/never-reached",
        **extra,
    )


RUN_OPTION_MISTAKES = {
    "port": (
        ["--port", "70000"],
        "--port 70000 is not a port: use 1 to 65535, or 0 for any free one",
    ),
    "workers": (["--workers", "-1"], "--workers -1: use 0 (no steps in this process) or more"),
    "host": (
        ["--host", "nowhere.invalid"],
        "--host 'nowhere.invalid' is not an address of this machine: use 127.0.0.1, "
        "0.0.0.0 or one of its interfaces",
    ),
}


def test_bad_run_options_are_one_line(tmp_path: Path) -> None:
    env = run_env(tmp_path)
    cases = {name: (["run", *args], env) for name, (args, _) in RUN_OPTION_MISTAKES.items()}
    lines = refused_all(cases)
    for name, (_, expected) in RUN_OPTION_MISTAKES.items():
        assert lines[name] == "reelqueue: error: " + expected, name


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = refused(["run", "--port", str(port)], run_env(tmp_path))
    assert line == (
        f"reelqueue: error: --port {port}: 127.0.0.1:{port} is already in use (another "
        "`reelqueue run`?): stop what listens there, or choose another --port"
    )


UNKNOWN_STEP_SET = CHANNELS_YAML + "    step_set: studio\n"
UNKNOWN_GATE = CHANNELS_YAML + "    auto_approve: [assets, vidoe]\n"


STEP_MISTAKES: dict[str, tuple[str, dict[str, str], str]] = {
    "step-set": (
        UNKNOWN_STEP_SET,
        {},
        "{file} line 6: channels.1.step_set: unknown step set 'studio'; known step sets: "
        "demo (name another in REELQUEUE_STEP_SETS or install its package)",
    ),
    "auto-approve": (
        UNKNOWN_GATE,
        {},
        "{file} line 6: channels.1.auto_approve.1: unknown gate 'vidoe'; known gates: "
        "assets, video, audio, final",
    ),
    "step-cap": (
        CHANNELS_YAML,
        {"REELQUEUE_STEP_CAPS": '{"vidoe": 2}'},
        "REELQUEUE_STEP_CAPS: unknown step 'vidoe'; known steps: assets, composites, "
        "video, audio, sfx, assembly, upload",
    ),
}


def test_an_unknown_step_or_step_set_is_refused_at_start_up(tmp_path: Path) -> None:
    cases = {}
    for name, (yaml_text, extra, _) in STEP_MISTAKES.items():
        (tmp_path / name).mkdir()
        cases[name] = (["run"], run_env(tmp_path / name, yaml_text, **extra))
    lines = refused_all(cases)
    for name, (_, _, expected) in STEP_MISTAKES.items():
        file = tmp_path / name / "channels.yaml"
        assert lines[name] == "reelqueue: error: " + expected.format(file=file), name


def test_a_worker_refuses_an_unknown_step_set_too(tmp_path: Path) -> None:
    line = refused(["worker"], run_env(tmp_path, UNKNOWN_STEP_SET))
    assert line.startswith(f"reelqueue: error: {tmp_path / 'channels.yaml'} line 6: ")
    assert "unknown step set 'studio'; known step sets: demo" in line


async def data_source(sandbox: SandboxAdmin) -> dict[str, Any]:
    async with NotionClient(sandbox.token, base_url=sandbox.base_url) as notion:
        found = await notion.retrieve_data_source(sandbox.data_source_id)
    return dict(found["properties"])


async def test_notion_setup_without_a_channels_file_refuses_and_check_says_so(
    sandbox: SandboxAdmin, tmp_path: Path
) -> None:
    await sandbox.reset(**(SANDBOX_DEFAULTS | {"channels": ["science"], "rps": 1000.0}))
    env = cli_env(
        tmp_path,
        NOTION_TOKEN=sandbox.token,
        NOTION_API_URL=sandbox.base_url,
        NOTION_DATABASE_IDS=sandbox.database_id,
    )
    before = await data_source(sandbox)
    setup = reelqueue("notion", "setup", "--yes", env=env)
    assert setup.returncode == 2
    assert one_line_error(setup.stderr) == (
        "reelqueue: error: REELQUEUE_CHANNELS is not set: point it at the channels file "
        "(YAML, see README)"
    )
    assert await data_source(sandbox) == before, "setup changed Notion without a channels file"

    check = reelqueue("notion", "check", env=env)
    assert check.returncode == 1, check.stderr
    assert check.stdout.strip().splitlines()[-1] == (
        "channels file: not set, so the Channel options were not checked; point "
        "REELQUEUE_CHANNELS at the channels file (YAML, see README) and check again"
    )
    assert sandbox.token not in check.stdout + check.stderr


def test_a_database_in_the_old_default_home_is_pointed_out(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".reelqueue" / "postgres").mkdir(parents=True)
    (project / ".reelqueue" / "postgres" / "PG_VERSION").write_text("18\n")
    env = cli_env(tmp_path, XDG_DATA_HOME=str(tmp_path / "share"))
    del env["REELQUEUE_DATA_DIR"]
    result = subprocess.run(
        [sys.executable, "-m", "reelqueue", "status"],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert one_line_error(result.stderr) == (
        f"reelqueue: error: no reelqueue database in {tmp_path / 'share' / 'reelqueue'}, the "
        f"default home, but there is one in {project / '.reelqueue'} (the old default): set "
        f"REELQUEUE_DATA_DIR={project / '.reelqueue'} to use it"
    )
    assert not (tmp_path / "share").exists()


async def test_a_user_without_the_right_to_create_tables_is_told_which_right(
    server: PasswordServer, tmp_path: Path
) -> None:
    admin = await asyncpg.connect(server.url())
    try:
        await admin.execute(f"CREATE ROLE newcomer LOGIN PASSWORD '{PASSWORD}'")
        await admin.execute("CREATE DATABASE newcomers OWNER postgres")
    finally:
        await admin.close()
    env = cli_env(tmp_path, DATABASE_URL=server.url(user="newcomer", db="newcomers"))
    line = await asyncio.to_thread(refused, ["db", "upgrade"], env)
    assert line == (
        "reelqueue: error: DATABASE_URL: the database refused (permission denied for schema "
        "public): its user must own the database or may create in its schema, e.g. GRANT "
        "CREATE ON SCHEMA public TO that user"
    )
