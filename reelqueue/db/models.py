"""The tables: tasks (the queue itself), their history, sync state, webhook inbox, outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from reelqueue.statuses import StatusTable

__all__ = [
    "OUTBOX",
    "SERVICE_STATE",
    "SYNC_STATE",
    "TASKS",
    "TASK_EVENTS",
    "WEBHOOK_INBOX",
    "Base",
    "OutboxEntry",
    "ServiceState",
    "SyncState",
    "Task",
    "TaskEvent",
    "WebhookEvent",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with predictable constraint names, so migrations stay stable."""

    metadata = MetaData(naming_convention=NAMING)


# The default vocabulary's; `db/queue_sql.py` rebuilds the index for the one in use.
_RUNNABLE_SQL = ", ".join(f"'{s}'" for s in StatusTable().runnable)


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class Task(Base):
    """One video: one row per Notion page. The row is the job; its status is the state."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    notion_page_id: Mapped[str] = mapped_column(Text, unique=True)
    data_source_id: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    topic: Mapped[str] = mapped_column(Text, server_default="")
    story_direction: Mapped[str] = mapped_column(Text, server_default="")
    priority: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    status: Mapped[str] = mapped_column(Text, server_default="queued")
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    step_attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    outputs: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    locked_by: Mapped[str | None] = mapped_column(Text)
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    run_after: Mapped[datetime] = _now()
    error_log: Mapped[str] = mapped_column(Text, server_default="")
    youtube_url: Mapped[str | None] = mapped_column(Text)
    resume_step: Mapped[str | None] = mapped_column(Text)
    notion_seen: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    page_missing: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))

    __table_args__ = (
        Index(
            "ix_tasks_runnable",
            "channel",
            "priority",
            "created_at",
            "id",
            postgresql_where=text(f"status IN ({_RUNNABLE_SQL})"),
        ),
        Index(
            "ix_tasks_channel_locked_at",
            "channel",
            "locked_at",
            postgresql_where=text("locked_at IS NOT NULL"),
        ),
        Index(
            "ix_tasks_leased",
            "lease_expires_at",
            postgresql_where=text("locked_by IS NOT NULL"),
        ),
    )


class TaskEvent(Base):
    """Append-only history of every status change of a task, with who made it and why."""

    __tablename__ = "task_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # A tasks.id, though no foreign key says so: see migration 0006.
    task_id: Mapped[int] = mapped_column(BigInteger, index=True)
    from_status: Mapped[str | None] = mapped_column(Text)
    to_status: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = _now()


class SyncState(Base):
    """Per data source: the incremental poll watermark and the last full reconcile."""

    __tablename__ = "sync_state"

    data_source_id: Mapped[str] = mapped_column(Text, primary_key=True)
    database_id: Mapped[str] = mapped_column(Text)
    watermark: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_full_reconcile_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = _now()


class WebhookEvent(Base):
    """The webhook inbox: one row per Notion event id, so a redelivery is recognised."""

    __tablename__ = "webhook_inbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[str] = mapped_column(Text, unique=True)
    event_type: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = _now()
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_webhook_inbox_unapplied", "id", postgresql_where=text("processed_at IS NULL")),
        Index("ix_webhook_inbox_received_at", "received_at"),
    )


class OutboxEntry(Base):
    """A pending write to a Notion page, made in the same transaction as the task change."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    task_id: Mapped[int] = mapped_column(BigInteger)  # a tasks.id: see migration 0006
    notion_page_id: Mapped[str] = mapped_column(Text)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index(
            "ix_outbox_pending",
            "notion_page_id",
            "id",
            postgresql_where=text("sent_at IS NULL"),
        ),
    )


class ServiceState(Base):
    """Small named values the service keeps, such as the captured webhook verification token."""

    __tablename__ = "service_state"

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = _now()


TASKS = cast(Table, Task.__table__)
TASK_EVENTS = cast(Table, TaskEvent.__table__)
SYNC_STATE = cast(Table, SyncState.__table__)
WEBHOOK_INBOX = cast(Table, WebhookEvent.__table__)
OUTBOX = cast(Table, OutboxEntry.__table__)
SERVICE_STATE = cast(Table, ServiceState.__table__)
