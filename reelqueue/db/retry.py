"""Transactions PostgreSQL aborted to break a deadlock (or a serialization conflict) run again."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["RETRYABLE_SQLSTATES", "is_retryable", "run_in_transaction"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

# deadlock_detected, serialization_failure: PostgreSQL rolled the transaction back whole.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def is_retryable(error: BaseException) -> bool:
    """Whether PostgreSQL aborted this transaction only to let another one finish."""
    return isinstance(error, DBAPIError) and (
        getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
    )


async def run_in_transaction(
    engine: AsyncEngine,
    work: Callable[[AsyncConnection], Awaitable[T]],
    *,
    attempts: int = 5,
    what: str = "transaction",
) -> T:
    """Run `work` in a transaction of its own; again, after a short random pause, if
    PostgreSQL aborted it to break a deadlock. `work` must do nothing outside the database."""
    for attempt in range(1, attempts + 1):
        try:
            async with engine.begin() as conn:
                return await work(conn)
        except DBAPIError as exc:
            if not is_retryable(exc) or attempt == attempts:
                raise
            log.info("database conflict; running the transaction again", what=what, attempt=attempt)
            await asyncio.sleep(random.uniform(0.01, 0.05) * attempt)
    raise AssertionError("unreachable")
