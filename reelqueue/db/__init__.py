"""Storage: the tables, their migrations, the embedded server and connections."""

from reelqueue.db.embedded import EmbeddedDatabaseError, start_embedded_server
from reelqueue.db.engine import (
    DatabaseUnavailable,
    create_engine,
    ensure_database,
    libpq_url,
    resolve_database_url,
    with_database,
)
from reelqueue.db.migrate import current_revision, downgrade, head_revision, upgrade
from reelqueue.db.models import (
    OUTBOX,
    SERVICE_STATE,
    SYNC_STATE,
    TASK_EVENTS,
    TASKS,
    WEBHOOK_INBOX,
    Base,
    OutboxEntry,
    ServiceState,
    SyncState,
    Task,
    TaskEvent,
    WebhookEvent,
)

__all__ = [
    "OUTBOX",
    "SERVICE_STATE",
    "SYNC_STATE",
    "TASKS",
    "TASK_EVENTS",
    "WEBHOOK_INBOX",
    "Base",
    "DatabaseUnavailable",
    "EmbeddedDatabaseError",
    "OutboxEntry",
    "ServiceState",
    "SyncState",
    "Task",
    "TaskEvent",
    "WebhookEvent",
    "create_engine",
    "current_revision",
    "downgrade",
    "ensure_database",
    "head_revision",
    "libpq_url",
    "resolve_database_url",
    "start_embedded_server",
    "upgrade",
    "with_database",
]
