"""Settings and the channels file: good input is read; bad input is one actionable line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reelqueue.config import Channels, ConfigError, load_channels, load_settings
from reelqueue.statuses import GATES


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "DATABASE_URL",
        "NOTION_TOKEN",
        "NOTION_DATABASE_IDS",
        "NOTION_RATE_LIMIT",
        "NOTION_API_URL",
        "REELQUEUE_POLL_INTERVAL",
        "REELQUEUE_CHANNELS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_need_no_environment() -> None:
    s = load_settings()
    assert s.database_url is None
    assert s.data_dir.is_absolute(), "the embedded database's home must not follow the cwd"
    assert s.notion_api_url == "https://api.notion.com"
    assert s.notion_rate_limit == 3.0
    assert s.poll_interval_s == 15.0
    assert s.notion_database_ids == []


def test_the_data_directory_is_per_user_and_the_same_from_any_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REELQUEUE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    here = load_settings().data_dir
    monkeypatch.chdir(tmp_path / "..")
    assert load_settings().data_dir == here == tmp_path / "share" / "reelqueue"
    monkeypatch.setenv("REELQUEUE_DATA_DIR", str(tmp_path / "mine"))
    assert load_settings().data_dir == tmp_path / "mine"


def test_database_ids_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTION_DATABASE_IDS", " abc , https://www.notion.so/x-123 ,,")
    assert load_settings().notion_database_ids == ["abc", "https://www.notion.so/x-123"]


@pytest.mark.parametrize(
    ("variable", "value", "fragment", "fix"),
    [
        ("NOTION_RATE_LIMIT", "-1", "greater than 0", "e.g. 3"),
        ("NOTION_RATE_LIMIT", "fast", "valid number", "e.g. 3"),
        ("NOTION_RATE_BUDGET", "lots", "valid integer", "e.g. 180, or leave it unset"),
        ("NOTION_API_URL", "api.notion.com", "http", "or the sandbox's URL"),
        ("REELQUEUE_POLL_INTERVAL", "0", "greater than 0", "e.g. 15"),
        ("REELQUEUE_STEP_CAPS", "[1]", "dictionary", '{"video": 5}'),
        ("REELQUEUE_LOG_LEVEL", "loud", "debug", ""),
    ],
)
def test_a_bad_variable_is_named_with_its_own_fix(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str, fix: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{variable}:")
    assert fragment in message
    assert message.endswith(fix)
    assert "fix its value" not in message
    assert "\n" not in message


def test_the_token_is_never_echoed_in_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTION_TOKEN", "secret_abcdef")
    assert load_settings().secrets() == ["secret_abcdef"]
    assert "secret_abcdef" not in repr(load_settings())


def test_reelqueue_toml_is_read(tmp_path: Path) -> None:
    (tmp_path / "reelqueue.toml").write_text("notion_rate_limit = 2.5\npoll_interval_s = 5\n")
    s = load_settings()
    assert s.notion_rate_limit == 2.5
    assert s.poll_interval_s == 5


def test_environment_wins_over_the_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "reelqueue.toml").write_text("notion_rate_limit = 2.5\n")
    monkeypatch.setenv("NOTION_RATE_LIMIT", "1")
    assert load_settings().notion_rate_limit == 1


def test_a_broken_toml_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "reelqueue.toml").write_text("notion_rate_limit = = 3\n")
    with pytest.raises(ConfigError, match=r"reelqueue\.toml"):
        load_settings()


CHANNELS = """\
channels:
  - id: science
    name: Science Explained
    auto_approve: [assets, video]
  - id: history
    name: History Retold
    active: false
    max_concurrent: 4
"""


def test_channels_file_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text(CHANNELS)
    channels = load_channels(path)
    science = channels.get("science")
    history = channels.get("history")
    assert science is not None
    assert history is not None
    assert science.active is True
    assert science.max_concurrent == 2
    assert science.auto_approve == ("assets", "video")
    assert history.active is False
    assert history.max_concurrent == 4
    assert history.auto_approve == ()
    assert channels.get("cooking") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CHANNELS.replace("max_concurrent: 4", "max_concurrent: 0"), "line 8: channels.1.max"),
        (CHANNELS.replace("[assets, video]", "[assets, thumbnails]"), "line 4: channels.0.auto"),
        (CHANNELS.replace("    name: History Retold\n", ""), "line 5: channels.1.name"),
        (CHANNELS.replace("id: history", "id: science"), "appears twice"),
        (CHANNELS + "    colour: red\n", "line 9: channels.1.colour"),
        ("channels: [\n", "line"),
        ("- just a list\n", "expected a mapping"),
    ],
)
def test_a_bad_channels_file_names_file_line_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_channels(path, gates=GATES)
    message = str(caught.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message


def test_a_missing_channels_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="REELQUEUE_CHANNELS"):
        load_channels(tmp_path / "nope.yaml")


@settings(max_examples=200)
@given(st.text(max_size=300))
def test_any_file_content_is_channels_or_a_config_error(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "channels.yaml"
        path.write_text(text, encoding="utf-8")
        outcome: object
        try:
            outcome = load_channels(path)
        except ConfigError as exc:
            outcome = exc
        if isinstance(outcome, ConfigError):
            assert "\n" not in str(outcome).strip()
        else:
            assert isinstance(outcome, Channels)
            assert outcome.channels
