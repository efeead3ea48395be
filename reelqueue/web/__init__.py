"""The web app: webhooks, health and metrics."""

from reelqueue.web.app import WebState, create_app
from reelqueue.web.server import WebServer

__all__ = ["WebServer", "WebState", "create_app"]
