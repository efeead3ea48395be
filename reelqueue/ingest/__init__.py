"""Ingest: Notion changes (polls, reconciles, webhook doorbell) turned into queue reactions."""

from reelqueue.ingest.decisions import Decision, Outcome, Rules
from reelqueue.ingest.doorbell import Doorbell, Rings
from reelqueue.ingest.inbox import InboxWriter
from reelqueue.ingest.poller import PassResult, Poller, floor_minute
from reelqueue.ingest.reactions import ReactionSummary, Reactor, parse_priority
from reelqueue.ingest.snapshot import PageSnapshot
from reelqueue.ingest.validation import MAX_TITLE_LENGTH, invalid_reason
from reelqueue.ingest.webhooks import (
    DOORBELL_CHANNEL,
    MAX_BODY_BYTES,
    Delivery,
    Verdict,
    classify,
    parse_delivery,
    record_events,
    signature_matches,
)

__all__ = [
    "DOORBELL_CHANNEL",
    "MAX_BODY_BYTES",
    "MAX_TITLE_LENGTH",
    "Decision",
    "Delivery",
    "Doorbell",
    "InboxWriter",
    "Outcome",
    "PageSnapshot",
    "PassResult",
    "Poller",
    "ReactionSummary",
    "Reactor",
    "Rings",
    "Rules",
    "Verdict",
    "classify",
    "floor_minute",
    "invalid_reason",
    "parse_delivery",
    "parse_priority",
    "record_events",
    "signature_matches",
]
