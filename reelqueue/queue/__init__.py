"""The queue on the tasks table: task rows, history and outbox, wake-ups, leadership."""

from reelqueue.queue.claim import (
    ClaimedTask,
    ClaimLimits,
    Exchanged,
    ExpiredLease,
    Finish,
    exchange,
    expired_leases,
    heartbeat,
)
from reelqueue.queue.leader import LEADER_LOCK_KEY, LeaderElection
from reelqueue.queue.lifecycle import BackgroundService, Lifecycle, stop_all
from reelqueue.queue.missing import MOVED, hold_moved, mark_missing, release_found
from reelqueue.queue.notify import Listener
from reelqueue.queue.operations import (
    TaskEventRecord,
    approve_task,
    cancel_task,
    retry_task,
    task_history,
)
from reelqueue.queue.page_view import fields_to_write, page_fields
from reelqueue.queue.reports import status_counts
from reelqueue.queue.tasks import (
    OUTBOX_CHANNEL,
    TASKS_CHANNEL,
    NewTask,
    TaskChange,
    TaskRecord,
    apply_changes,
    insert_tasks,
    load_tasks,
    load_tasks_by_page,
    record_changes,
)

__all__ = [
    "LEADER_LOCK_KEY",
    "MOVED",
    "OUTBOX_CHANNEL",
    "TASKS_CHANNEL",
    "BackgroundService",
    "ClaimLimits",
    "ClaimedTask",
    "Exchanged",
    "ExpiredLease",
    "Finish",
    "LeaderElection",
    "Lifecycle",
    "Listener",
    "NewTask",
    "TaskChange",
    "TaskEventRecord",
    "TaskRecord",
    "apply_changes",
    "approve_task",
    "cancel_task",
    "exchange",
    "expired_leases",
    "fields_to_write",
    "heartbeat",
    "hold_moved",
    "insert_tasks",
    "load_tasks",
    "load_tasks_by_page",
    "mark_missing",
    "page_fields",
    "record_changes",
    "release_found",
    "retry_task",
    "status_counts",
    "stop_all",
    "task_history",
]
