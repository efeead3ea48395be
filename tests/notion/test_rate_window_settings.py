"""NOTION_RATE_BUDGET and NOTION_RATE_WINDOW_S: read from the environment, reach the limiter."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelqueue.config import ConfigError, load_settings
from reelqueue.notion import NotionClient


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("NOTION_RATE_BUDGET", "NOTION_RATE_WINDOW_S", "NOTION_RATE_LIMIT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_without_a_budget_the_bucket_paces_and_the_window_is_a_minute() -> None:
    settings = load_settings()
    assert (settings.notion_rate_budget, settings.notion_rate_window_s) == (None, 60.0)


async def test_a_configured_budget_reaches_the_limiter_and_its_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTION_RATE_BUDGET", "540")
    monkeypatch.setenv("NOTION_RATE_WINDOW_S", "60")
    settings = load_settings()
    async with NotionClient(
        "secret_rate_window_settings_token",
        rate_limit=settings.notion_rate_limit,
        burst=settings.notion_rate_burst,
        budget=settings.notion_rate_budget,
        window_s=settings.notion_rate_window_s,
    ) as client:
        status = client.rate_limit_status()
    assert (status.budget, status.budget_source, status.window_s) == (540, "configured", 60.0)
    assert (status.rate, status.burst) == (9.0, 540)


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("NOTION_RATE_BUDGET", "0", "greater than or equal to 1"),
        ("NOTION_RATE_BUDGET", "lots", "valid integer"),
        ("NOTION_RATE_WINDOW_S", "0", "greater than 0"),
    ],
)
def test_a_bad_budget_or_window_is_named_with_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"{variable}:")
    assert fragment in str(caught.value)
