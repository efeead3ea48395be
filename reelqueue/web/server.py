"""Serve the web app with uvicorn inside the service's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

__all__ = ["WebServer"]


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the service."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class WebServer:
    """The web app on host:port (0 picks a free port); stopping twice is fine."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 8000) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
        )
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None
        self.host = host

    async def start(self) -> None:
        """Bind and start serving; returns once connections are accepted."""
        self._task = asyncio.create_task(self._server.serve(), name="web")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise OSError(f"the web server could not listen on {self.host}")
            await asyncio.sleep(0.01)

    @property
    def port(self) -> int:
        """The port actually bound."""
        servers = getattr(self._server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self._server.config.port)

    @property
    def base_url(self) -> str:
        """The URL clients use to reach the app."""
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Stop accepting connections and finish the ones in flight."""
        task, self._task = self._task, None
        if task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
