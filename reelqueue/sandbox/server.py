"""Serve the sandbox with uvicorn: in a background thread for tests, or blocking for the CLI.

Start/stop contract: `start()` returns once the server accepts connections; `stop()` returns
once it has shut down (hung requests are released first, so it is prompt); stopping twice,
or before starting, is fine; a stopped server can be started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import uvicorn

from reelqueue.sandbox.app import create_app
from reelqueue.sandbox.config import SandboxConfig
from reelqueue.sandbox.ratelimit import WINDOW, RequestLimits
from reelqueue.sandbox.state import SandboxState

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0


class SandboxServer:
    """One sandbox on 127.0.0.1 (a free port when the config says 0), on its own thread and loop.

    The thread owns the event loop that owns the sandbox's state; nothing else touches it.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.app = create_app(self.config)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._base_url: str | None = None

    @property
    def state(self) -> SandboxState:
        """The sandbox state (touch it only from the server's loop while it runs)."""
        state: SandboxState = self.app.state.sandbox
        return state

    @property
    def base_url(self) -> str:
        """The server's root URL, e.g. `http://127.0.0.1:54321` (known once started)."""
        if self._base_url is None:
            raise RuntimeError("the sandbox server has not been started")
        return self._base_url

    @property
    def token(self) -> str:
        """The bearer token the sandbox accepts."""
        return self.config.token

    def start(self) -> SandboxServer:
        """Bind, serve in the background, and return once connections are accepted."""
        if self._thread is not None:
            return self
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and
        # without it every keep-alive answer waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        host, port = sock.getsockname()[:2]
        self._socket = sock
        self._base_url = f"http://{host}:{port}"
        self.state.base_url = self._base_url
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_level="warning",
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=2,
            )
        )
        self._thread = threading.Thread(target=self._run, name="notion-sandbox", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sandbox server did not start on {self._base_url}")
            time.sleep(0.005)
        return self

    def _run(self) -> None:
        assert self._server is not None
        assert self._socket is not None
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._server.serve(sockets=[self._socket]))
        finally:
            loop.close()

    def stop(self) -> None:
        """Shut down and wait for the thread; a no-op when not running."""
        thread, server, loop = self._thread, self._server, self._loop
        if thread is None or server is None:
            return
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self.state.release_hung)
        server.should_exit = True
        thread.join(_STOP_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        self._thread = self._server = self._loop = self._socket = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def describe_limits(limits: RequestLimits) -> str:
    """The /v1 limits in one line, for the console."""
    if limits.rate_model == WINDOW:
        per_token = f"{limits.budget} requests per {limits.window_s:g} s per token"
    else:
        per_token = f"{limits.rps:g} requests/s per token, bursts of {limits.burst}"
    workspace = (
        f"{limits.workspace_budget} per {limits.workspace_window_s:g} s per workspace"
        if limits.workspace_budget
        else "no workspace limit"
    )
    low, high = limits.latency_ms
    latency = f"{low:g} ms" if low == high else f"{low:g}-{high:g} ms"
    return f"{per_token}; {workspace}; latency {latency}"


def serve(config: SandboxConfig) -> None:
    """Serve until Ctrl-C, after printing the base URL, token and database id to use."""
    server = SandboxServer(config).start()
    workspace = server.state.workspace
    try:  # from here on, a Ctrl-C (even one during the printing) stops the server
        print(f"Notion sandbox listening on {server.base_url}", flush=True)
        print(f"  NOTION_API_URL={server.base_url}", flush=True)
        print(f"  NOTION_TOKEN={server.token}", flush=True)
        print(f"  NOTION_DATABASE_IDS={workspace.database_id}", flush=True)
        print(f"  data source id: {workspace.data_source_id}", flush=True)
        print(f"  limits: {describe_limits(config.limits)}", flush=True)
        print(f"  admin API: {server.base_url}/_sandbox/info (Ctrl-C to stop)", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        print("Stopping the Notion sandbox.", flush=True)
    finally:
        server.stop()
