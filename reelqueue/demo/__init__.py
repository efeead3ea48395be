"""The demo: the whole service against a local Notion sandbox, acting as the creator."""

from reelqueue.demo.run import DemoOptions, run_demo
from reelqueue.demo.summary import DemoSummary, render_summary

__all__ = ["DemoOptions", "DemoSummary", "render_summary", "run_demo"]
