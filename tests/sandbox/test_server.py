"""The server's start/stop contract, the ASGI app in-process, and the blocking `serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from reelqueue.sandbox import SandboxConfig, SandboxServer, create_app


def server_thread(start: Callable[[], object]) -> threading.Thread:
    """Run `start` and return the one sandbox thread it began."""
    before = set(threading.enumerate())
    start()
    (thread,) = [t for t in set(threading.enumerate()) - before if t.name == "notion-sandbox"]
    return thread


def test_start_accepts_connections_and_stop_shuts_down_and_is_repeatable() -> None:
    server = SandboxServer(SandboxConfig(seed=7))
    server.stop()
    thread = server_thread(server.start)
    base_url = server.base_url
    try:
        info = httpx.get(f"{base_url}/_sandbox/info", trust_env=False).json()
        assert info["base_url"] == server.base_url
        assert info["token"] == server.token
    finally:
        server.stop()
        server.stop()
    assert not thread.is_alive(), "stop returned before the server had shut down"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base_url}/_sandbox/info", trust_env=False)


def test_stop_releases_a_hung_request_instead_of_waiting_for_it() -> None:
    server = SandboxServer(SandboxConfig(rate_model="bucket", rps=1000, burst=1000))
    thread = server_thread(server.start)
    answers: list[int | str] = []

    def hang() -> None:
        with httpx.Client(trust_env=False, timeout=30) as client:
            try:
                answer = client.get(
                    f"{server.base_url}/v1/users/me",
                    headers={
                        "Authorization": f"Bearer {server.token}",
                        "Notion-Version": "2025-09-03",
                    },
                )
                answers.append(answer.status_code)
            except httpx.HTTPError as error:
                answers.append(repr(error))

    try:
        faults = {"hang_rate": 1.0, "hang_max_ms": 3_600_000}
        httpx.post(f"{server.base_url}/_sandbox/faults", json=faults, trust_env=False)
        client_thread = threading.Thread(target=hang, daemon=True)
        client_thread.start()
        deadline = time.monotonic() + 10
        while httpx.get(f"{server.base_url}/_sandbox/stats", trust_env=False).json()["hung"] < 1:
            assert time.monotonic() < deadline, "the request never hung"
            time.sleep(0.01)
    finally:
        server.stop()
    assert not thread.is_alive(), "stop returned before the server had shut down"
    client_thread.join(10)
    # Released, the hung request is answered; cut off by the shutdown's grace, it would not be.
    assert answers == [504]


def test_a_stopped_server_starts_again() -> None:
    with SandboxServer() as server:
        pass
    with server:
        assert httpx.get(f"{server.base_url}/_sandbox/info", trust_env=False).status_code == 200


def test_the_same_seed_gives_the_same_workspace() -> None:
    first = create_app(SandboxConfig(seed=3)).state.sandbox
    second = create_app(SandboxConfig(seed=3)).state.sandbox
    assert first.workspace == second.workspace
    assert list(first.calendar.pages) == list(second.calendar.pages)


async def test_the_app_serves_in_process() -> None:
    app = create_app(SandboxConfig(token="t0k"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        answer = await client.get(
            "/v1/users/me", headers={"Authorization": "Bearer t0k", "Notion-Version": "2025-09-03"}
        )
    assert answer.status_code == 200
    assert answer.json()["type"] == "bot"


def test_serve_prints_what_to_connect_with_and_stops_on_ctrl_c() -> None:
    code = (
        "from reelqueue.sandbox import SandboxConfig, serve; "
        "serve(SandboxConfig(port=0, token='secret_cli'))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(4)]
    base_url = lines[0].split()[-1]
    assert base_url.startswith("http://127.0.0.1:")
    assert "NOTION_TOKEN=secret_cli" in lines[2]
    assert "NOTION_DATABASE_IDS=" in lines[3]
    info = httpx.get(f"{base_url}/_sandbox/info", trust_env=False).json()
    assert info["database_ids"][0] in lines[3]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=5) == 0
