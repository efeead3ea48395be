"""Serve the web app with uvicorn inside the service's own event loop.

A connection must bring a request's line and headers within `HEAD_TIMEOUT_S` of opening
(or of its previous answer), so clients sending nothing, or trickling headers, do not
hold connections; a body that trickles is cut off by the app itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Generator

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from reelqueue.queue.lifecycle import BackgroundService

__all__ = ["HEAD_TIMEOUT_S", "WebServer"]

HEAD_TIMEOUT_S = 5.0


class _HeadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, closing connections whose request head is late."""

    _head_timer: asyncio.TimerHandle | None = None

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_late)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._arm_head_timer()


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the service, says when it serves,
    and turns a port it cannot bind into an `OSError` (uvicorn would exit the process)."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        except SystemExit:
            where = f"{self.config.host}:{self.config.port}"
            raise OSError(f"the web server could not listen on {where}") from None
        self._on_started()


class WebServer(BackgroundService):
    """The web app on host:port (0 picks a free port), following the service lifecycle:
    awaiting `start()` returns once connections are accepted; `stop()` stops accepting
    and finishes the requests in flight."""

    name = "web"
    up_at_once = False

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 8000) -> None:
        super().__init__()
        self._config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            http=_HeadDeadlineProtocol,
        )
        self._server = _QuietServer(self._config, self._up)
        self.host = host

    async def _serve(self, stopping: asyncio.Event) -> None:
        server = self._server = _QuietServer(self._config, self._up)
        serving = asyncio.ensure_future(server.serve())
        stopped = asyncio.ensure_future(stopping.wait())
        try:
            await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
            server.should_exit = True
            await serving
        except asyncio.CancelledError:
            # Hurried: close the listening socket, without waiting for open connections.
            server.should_exit = server.force_exit = True
            await asyncio.wait({serving}, timeout=1.0)
            raise
        finally:
            stopped.cancel()
            serving.cancel()

    @property
    def port(self) -> int:
        """The port actually bound."""
        servers = getattr(self._server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self._config.port)

    @property
    def base_url(self) -> str:
        """The URL clients use to reach the app."""
        return f"http://{self.host}:{self.port}"
