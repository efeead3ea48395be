"""The root of reelqueue's exception tree, shared by every layer."""

from __future__ import annotations

__all__ = ["ReelqueueError", "UserError"]


class ReelqueueError(Exception):
    """Base of every error reelqueue raises on purpose."""


class UserError(ReelqueueError):
    """A mistake the person running reelqueue can fix; shown as one line, exit code 2.

    The message names what is wrong and how to fix it; it never carries a secret.
    """
