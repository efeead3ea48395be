"""Logging: JSON lines off a terminal, correlation ids bound, secrets never printed."""

from __future__ import annotations

import io
import json

import structlog

from reelqueue.logs import REDACTED, configure_logging, correlation, register_secret


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    configure_logging("info", "auto", stream=out)
    structlog.get_logger("t").info("task queued", notion_page_id="abc")
    (line,) = _lines(out)
    assert line["event"] == "task queued"
    assert line["notion_page_id"] == "abc"
    assert line["level"] == "info"
    assert "timestamp" in line


def test_level_filters_lines() -> None:
    out = io.StringIO()
    configure_logging("warning", "json", stream=out)
    log = structlog.get_logger("t")
    log.info("hidden")
    log.warning("shown")
    assert [line["event"] for line in _lines(out)] == ["shown"]


def test_correlation_id_ties_lines_together() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    log = structlog.get_logger("t")
    with correlation() as cid:
        log.info("one")
        log.info("two")
    log.info("after")
    first, second, after = _lines(out)
    assert first["correlation_id"] == second["correlation_id"] == cid
    assert "correlation_id" not in after


def test_registered_secrets_are_redacted_everywhere() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    register_secret("secret_tok_123456")
    log = structlog.get_logger("t")
    log.info(
        "calling with secret_tok_123456", headers={"Authorization": "Bearer secret_tok_123456"}
    )
    log.info("nested", items=["x secret_tok_123456 y"])
    text = out.getvalue()
    assert "secret_tok_123456" not in text
    assert text.count(REDACTED) == 3
