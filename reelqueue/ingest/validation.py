"""Why a Queued calendar entry cannot be produced, in words the creator can act on."""

from __future__ import annotations

from reelqueue.config import Channels
from reelqueue.ingest.snapshot import PageSnapshot

__all__ = ["MAX_TITLE_LENGTH", "invalid_reason"]

MAX_TITLE_LENGTH = 100  # YouTube's limit for a video title


def invalid_reason(page: PageSnapshot, channels: Channels) -> str | None:
    """The reason this entry cannot be queued, or None when it can."""
    problems: list[str] = []
    known = ", ".join(c.id for c in channels.channels if c.active)
    odd = dict(page.not_text)
    if "Title" in odd and not page.title:
        problems.append(f"Title holds {odd['Title']}, not text: write the title as text")
    elif not page.title:
        problems.append("Title is empty: give the video a title")
    elif len(page.title) > MAX_TITLE_LENGTH:
        problems.append(
            f"Title is {len(page.title)} characters long; YouTube allows at most "
            f"{MAX_TITLE_LENGTH}: shorten it"
        )
    if "Topic" in odd and not page.topic:
        problems.append(f"Topic holds {odd['Topic']}, not text: write the topic as text")
    elif not page.topic:
        problems.append("Topic is empty: say what the video is about")
    if not page.channel:
        problems.append(f"Channel is empty: choose one of {known}")
    else:
        channel = channels.get(page.channel)
        if channel is None:
            problems.append(
                f"Channel '{page.channel}' is not in the channels file: "
                f"choose one of {known}, or add it to the channels file"
            )
        elif not channel.active:
            problems.append(
                f"Channel '{page.channel}' is inactive: choose one of {known}, "
                "or set it active in the channels file"
            )
    if not problems:
        return None
    return "; ".join(problems) + ". Then set Status to Queued again."
