"""Settings from the environment (and an optional reelqueue.toml), and the channels file.

Every user mistake here becomes a `UserError` naming the variable (or file, line and
field) and the fix, so the CLI can print one line and exit 2.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from reelqueue.errors import UserError

__all__ = [
    "DEFAULT_CHANNELS",
    "Channel",
    "Channels",
    "ConfigError",
    "Settings",
    "default_data_dir",
    "load_channels",
    "load_settings",
]


CONFIG_FILE_ENV = "REELQUEUE_CONFIG"
DEFAULT_CONFIG_FILE = "reelqueue.toml"


class ConfigError(UserError):
    """A missing or invalid setting, or a bad channels file."""


def default_data_dir() -> Path:
    """The per-user data directory (e.g. ~/.local/share/reelqueue): the same from any folder."""
    return platformdirs.user_data_path("reelqueue", appauthor=False)


def _env(name: str) -> AliasChoices:
    """Accept the documented variable name and the field name (as used in reelqueue.toml)."""
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """Everything reelqueue reads from its environment; names are the documented variables."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str | None = Field(default=None, validation_alias=_env("DATABASE_URL"))
    data_dir: Path = Field(
        default_factory=default_data_dir, validation_alias=_env("REELQUEUE_DATA_DIR")
    )
    notion_token: SecretStr | None = Field(default=None, validation_alias=_env("NOTION_TOKEN"))
    notion_database_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("NOTION_DATABASE_IDS")
    )
    notion_api_url: str = Field(
        default="https://api.notion.com", validation_alias=_env("NOTION_API_URL")
    )
    notion_rate_limit: float = Field(
        default=3.0, gt=0, le=100, validation_alias=_env("NOTION_RATE_LIMIT")
    )
    notion_rate_burst: int = Field(
        default=3, ge=1, le=100, validation_alias=_env("NOTION_RATE_BURST")
    )
    notion_rate_budget: int | None = Field(
        default=None, ge=1, le=1_000_000, validation_alias=_env("NOTION_RATE_BUDGET")
    )
    notion_rate_window_s: float = Field(
        default=60.0, gt=0, le=3600, validation_alias=_env("NOTION_RATE_WINDOW_S")
    )
    notion_webhook_token: SecretStr | None = Field(
        default=None, validation_alias=_env("NOTION_WEBHOOK_TOKEN")
    )
    poll_interval_s: float = Field(
        default=15.0, gt=0, le=3600, validation_alias=_env("REELQUEUE_POLL_INTERVAL")
    )
    reconcile_interval_s: float = Field(
        default=600.0, gt=0, validation_alias=_env("REELQUEUE_RECONCILE_INTERVAL")
    )
    status_labels: dict[str, str] = Field(
        default_factory=dict, validation_alias=_env("REELQUEUE_STATUS_LABELS")
    )
    channels_file: Path | None = Field(default=None, validation_alias=_env("REELQUEUE_CHANNELS"))
    step_caps: dict[str, int] = Field(
        default_factory=dict, validation_alias=_env("REELQUEUE_STEP_CAPS")
    )
    step_sets: dict[str, str] = Field(
        default_factory=dict, validation_alias=_env("REELQUEUE_STEP_SETS")
    )
    max_attempts: int = Field(
        default=3, ge=1, le=100, validation_alias=_env("REELQUEUE_MAX_ATTEMPTS")
    )
    lease_s: float = Field(default=30.0, gt=0.5, le=3600, validation_alias=_env("REELQUEUE_LEASE"))
    drain_timeout_s: float = Field(
        default=30.0, ge=0, le=3600, validation_alias=_env("REELQUEUE_DRAIN_TIMEOUT")
    )
    retry_base_s: float = Field(
        default=2.0, gt=0, le=3600, validation_alias=_env("REELQUEUE_RETRY_BASE")
    )
    artifacts_dir: Path | None = Field(default=None, validation_alias=_env("REELQUEUE_ARTIFACTS"))
    demo_step_seconds: float = Field(
        default=0.3, ge=0, le=600, validation_alias=_env("REELQUEUE_DEMO_STEP_SECONDS")
    )
    demo_failure_rate: float = Field(
        default=0.0, ge=0, le=1, validation_alias=_env("REELQUEUE_DEMO_FAILURE_RATE")
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", validation_alias=_env("REELQUEUE_LOG_LEVEL")
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", validation_alias=_env("REELQUEUE_LOG_FORMAT")
    )
    allow_other_deployments: bool = Field(
        default=False, validation_alias=_env("REELQUEUE_ALLOW_OTHER_DEPLOYMENTS")
    )

    @field_validator("notion_database_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("notion_api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )

    @property
    def artifacts_path(self) -> Path:
        """Where steps write their files: REELQUEUE_ARTIFACTS, or the data directory's."""
        return self.artifacts_dir or self.data_dir / "artifacts"

    def secrets(self) -> list[str]:
        """The secret values set, so logging can redact them wherever they appear."""
        values = [self.notion_token, self.notion_webhook_token]
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


_FIX_HINTS: dict[str, str] = {
    "notion_rate_limit": "set it to Notion requests per second, e.g. 3",
    "notion_rate_burst": "set it to a small whole number, e.g. 3",
    "notion_rate_budget": "set it to Notion requests per window, e.g. 180, or leave it unset",
    "notion_rate_window_s": "set it to the seconds of Notion's budget window, e.g. 60",
    "notion_api_url": "set it to https://api.notion.com, or the sandbox's URL",
    "poll_interval_s": "set it to seconds between polls, e.g. 15",
    "reconcile_interval_s": "set it to seconds between full reconciles, e.g. 600",
    "status_labels": 'set it to a JSON object, e.g. {"queued": "Ready"}',
    "step_caps": 'set it to a JSON object of step caps, e.g. {"video": 5}',
    "step_sets": 'set it to a JSON object, e.g. {"studio": "mypackage.steps:STEPS"}',
    "max_attempts": "set it to how many times a step may run, e.g. 3",
    "lease_s": "set it to seconds a claim is held without a heartbeat, e.g. 30",
    "demo_failure_rate": "set it to a probability from 0 to 1",
    "log_level": "use one of debug, info, warning, error",
    "log_format": "use one of auto, json, console",
    "allow_other_deployments": "set it to true or false",
}


def _variable_name(field: str) -> str:
    """The environment variable a user sets for a settings field."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        return first if isinstance(first, str) else field
    return field.upper()


def _field_for(loc: str) -> str:
    """The settings field an error location names: the field itself, or one of its aliases."""
    if loc in Settings.model_fields:
        return loc
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        names = alias.choices if isinstance(alias, AliasChoices) else [alias]
        if any(isinstance(n, str) and n.lower() == loc.lower() for n in names):
            return field
    return loc


def load_settings(**overrides: Any) -> Settings:
    """Read settings, turning a validation failure into one actionable line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field_for(str(first["loc"][0])) if first["loc"] else ""
        name = _variable_name(field) if field in Settings.model_fields else field
        got = first.get("input")
        shown = "" if field in {"notion_token", "notion_webhook_token"} else f" (got {got!r})"
        hint = _FIX_HINTS.get(field, "fix its value")
        raise ConfigError(f"{name}: {first['msg'].lower()}{shown}; {hint}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{os.environ.get(CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE)}: {exc}"
        ) from None


class Channel(BaseModel):
    """One channel of the calendar; `id` equals the Notion "Channel" select option."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    active: bool = True
    max_concurrent: int = Field(default=2, ge=1, le=1000)
    auto_approve: tuple[str, ...] = ()
    step_set: str = "demo"


class Channels(BaseModel):
    """The channels file: the channels reelqueue produces videos for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: tuple[Channel, ...] = Field(min_length=1)

    @field_validator("channels")
    @classmethod
    def _unique_ids(cls, value: tuple[Channel, ...]) -> tuple[Channel, ...]:
        seen: set[str] = set()
        for channel in value:
            if channel.id in seen:
                raise ValueError(f"channel id {channel.id!r} appears twice")
            seen.add(channel.id)
        return value

    def get(self, channel_id: str) -> Channel | None:
        """The channel with this id, or None."""
        return next((c for c in self.channels if c.id == channel_id), None)


DEFAULT_CHANNELS = Channels(
    channels=(
        Channel(
            id="science",
            name="Science Explained",
            max_concurrent=5,
            auto_approve=("assets", "video", "audio", "final"),
        ),
        Channel(
            id="history",
            name="History Retold",
            max_concurrent=5,
            auto_approve=("assets", "video", "audio", "final"),
        ),
    )
)


def _node_at(node: yaml.Node, loc: tuple[int | str, ...]) -> yaml.Node:
    """The deepest YAML node along a validation error's location, for its line number."""
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
            if match is None:
                return node
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if key >= len(node.value):
                return node
            node = node.value[key]
        else:
            return node
    return node


def load_channels(
    path: Path, step_sets: Collection[str] | None = None, gates: Collection[str] | None = None
) -> Channels:
    """Read and validate the channels file; errors name the file, line and field.

    With `step_sets` (the names of the step sets found), a channel naming another is
    refused too, listing the known ones; with `gates` (the status table's), so is an
    `auto_approve` naming a gate there is not.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: channels file not found; create it or point REELQUEUE_CHANNELS at it"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the channels file ({exc.strerror})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{path}{where}: {problem}; fix the YAML syntax") from None
    if root is None or not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'channels:' list")
    try:
        channels = Channels.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        line = _node_at(root, loc).start_mark.line + 1
        where = ".".join(str(part) for part in loc) or "channels"
        raise ConfigError(f"{path} line {line}: {where}: {_message(first)}") from None
    for index, channel in enumerate(channels.channels):
        unknown = [i for i, g in enumerate(channel.auto_approve) if gates and g not in gates]
        if gates is not None and unknown:
            loc = ("channels", index, "auto_approve", unknown[0])
            line = _node_at(root, loc).start_mark.line + 1
            raise ConfigError(
                f"{path} line {line}: channels.{index}.auto_approve.{unknown[0]}: unknown gate "
                f"{channel.auto_approve[unknown[0]]!r}; known gates: {', '.join(gates)}"
            )
        if step_sets is not None and channel.step_set not in step_sets:
            loc = ("channels", index, "step_set")
            line = _node_at(root, loc).start_mark.line + 1
            raise ConfigError(
                f"{path} line {line}: channels.{index}.step_set: unknown step set "
                f"{channel.step_set!r}; known step sets: {', '.join(sorted(step_sets))} "
                "(name another in REELQUEUE_STEP_SETS or install its package)"
            )
    return channels


def _message(error: Any) -> str:
    """A validation error's message, listing the allowed values where there are some."""
    if error.get("type") == "literal_error":
        expected = (error.get("ctx") or {}).get("expected", "")
        return f"unknown value {error.get('input')!r}; known values: {expected}"
    return str(error["msg"])
