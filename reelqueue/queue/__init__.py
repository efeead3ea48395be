"""The queue on the tasks table: task rows, history and outbox, wake-ups, leadership."""

from reelqueue.queue.leader import LEADER_LOCK_KEY, LeaderElection
from reelqueue.queue.missing import mark_missing
from reelqueue.queue.notify import Listener
from reelqueue.queue.page_view import fields_to_write, page_fields
from reelqueue.queue.reports import status_counts
from reelqueue.queue.tasks import (
    OUTBOX_CHANNEL,
    NewTask,
    TaskChange,
    TaskRecord,
    apply_changes,
    insert_tasks,
    load_tasks,
    load_tasks_by_page,
)

__all__ = [
    "LEADER_LOCK_KEY",
    "OUTBOX_CHANNEL",
    "LeaderElection",
    "Listener",
    "NewTask",
    "TaskChange",
    "TaskRecord",
    "apply_changes",
    "fields_to_write",
    "insert_tasks",
    "load_tasks",
    "load_tasks_by_page",
    "mark_missing",
    "page_fields",
    "status_counts",
]
