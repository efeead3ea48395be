"""The server's start/stop contract, the ASGI app in-process, and the blocking `serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from reelqueue.sandbox import SandboxConfig, SandboxServer, create_app


def test_start_accepts_connections_and_stop_is_prompt_and_repeatable() -> None:
    server = SandboxServer(SandboxConfig(seed=7))
    server.stop()
    server.start()
    try:
        info = httpx.get(f"{server.base_url}/_sandbox/info", trust_env=False).json()
        assert info["base_url"] == server.base_url
        assert info["token"] == server.token
    finally:
        started = time.monotonic()
        server.stop()
        server.stop()
    assert time.monotonic() - started < 2


def test_stop_is_prompt_with_a_hung_request_open() -> None:
    with SandboxServer(SandboxConfig(rate_model="bucket", rps=1000, burst=1000)) as server:
        httpx.post(f"{server.base_url}/_sandbox/faults", json={"hang_rate": 1.0}, trust_env=False)
        client = httpx.Client(trust_env=False, timeout=30)
        import threading

        thread = threading.Thread(
            target=lambda: client.get(
                f"{server.base_url}/v1/users/me",
                headers={"Authorization": f"Bearer {server.token}", "Notion-Version": "2025-09-03"},
            ),
            daemon=True,
        )
        thread.start()
        deadline = time.monotonic() + 10
        while httpx.get(f"{server.base_url}/_sandbox/stats", trust_env=False).json()["hung"] < 1:
            assert time.monotonic() < deadline, "the request never hung"
            time.sleep(0.01)
        started = time.monotonic()
    assert time.monotonic() - started < 3
    thread.join(5)
    client.close()


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
