"""Push-back: the outbox drained to Notion pages."""

from reelqueue.pushback.pusher import Pusher, PushResult, changed_fields

__all__ = ["PushResult", "Pusher", "changed_fields"]
