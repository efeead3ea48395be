"""The queue's SQL functions and runnable index, installed from `sql/*.sql` at every upgrade.

The SQL lives in `.sql` files inside `reelqueue.db` (not `reelqueue.queue`, which calls it by
name) because installing it is part of upgrading the database and storage sits below the
queue in the import layers. Each file is plain SQL but for `{{name}}` constants rendered
from the status table, and, as in procrastinate's `queries.sql`, holds named pieces, each
after a `-- name --` line. The migrations keep tables and indexes that do not depend on the
vocabulary; everything that does (these functions and `ix_tasks_runnable`, whose predicate
lists the runnable statuses) is derived here from `statuses.py`, so adding a step or a
status needs no migration: the next upgrade installs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib import resources

from sqlalchemy import Connection, text

from reelqueue.db.models import TASKS
from reelqueue.statuses import Kind, StatusTable

__all__ = [
    "RUNNABLE_INDEX",
    "SQL_FILES",
    "constants",
    "install",
    "pieces",
    "render",
    "runnable_index_sql",
]

SQL_FILES = ("queue.sql",)
RUNNABLE_INDEX = "ix_tasks_runnable"
_PIECE = re.compile(r"^-- ([a-z0-9_]+) --\n", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_QUOTED = re.compile(r"'((?:[^']|'')*)'")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _array(values: Iterable[str]) -> str:
    return "ARRAY[" + ", ".join(_literal(v) for v in values) + "]::text[]"


def constants(table: StatusTable) -> dict[str, str]:
    """The SQL constants the `.sql` files use, rendered from a status vocabulary."""
    stepped = [r for r in table if r.step and r.kind in {Kind.WAITING, Kind.RUNNING}]
    return {
        "queued": _literal(table.runnable[0]),
        "runnable": ", ".join(_literal(s) for s in table.runnable),
        "status_of": _array(r.status for r in stepped),
        "step_of": _array(r.step for r in stepped if r.step),
        "running_step": _array(table.steps),
        "running_status": _array(table.running_status_for(step) for step in table.steps),
    }


def render(sql: str, values: Mapping[str, str]) -> str:
    """`sql` with each `{{name}}` replaced; an unknown name is an error, not left in."""

    def value(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return _PLACEHOLDER.sub(value, sql)


def pieces(table: StatusTable | None = None) -> dict[str, str]:
    """Every named piece of every `.sql` file, rendered for `table` (default: statuses.py's)."""
    values = constants(table or StatusTable())
    found: dict[str, str] = {}
    for name in SQL_FILES:
        source = resources.files("reelqueue.db").joinpath("sql", name).read_text("utf-8")
        parts = _PIECE.split(source)[1:]
        for piece, body in zip(parts[::2], parts[1::2], strict=True):
            found[piece] = render(body.strip(), values)
    return found


def runnable_index_sql(table: StatusTable | None = None) -> str:
    """The runnable index as the claim's scan needs it: its predicate lists what it takes."""
    index = next(i for i in TASKS.indexes if i.name == RUNNABLE_INDEX)
    columns = ", ".join(column.name for column in index.columns)
    runnable = ", ".join(_literal(s) for s in (table or StatusTable()).runnable)
    return f"CREATE INDEX {RUNNABLE_INDEX} ON tasks ({columns}) WHERE status IN ({runnable})"


def _body(definition: str) -> str:
    return definition.split("$$")[1]


def install(conn: Connection, table: StatusTable | None = None) -> None:
    """Create or replace every function, drop any older one of ours, and rebuild the
    runnable index if the statuses it lists changed (all in the caller's transaction)."""
    table = table or StatusTable()
    functions = pieces(table)
    for definition in functions.values():
        conn.exec_driver_sql(definition)
    ours = conn.execute(
        text(
            "SELECT p.oid::regprocedure::text, p.proname, p.prosrc FROM pg_proc p"
            " WHERE p.proname LIKE 'reelqueue\\_%'"
            " AND p.pronamespace = current_schema()::regnamespace"
        )
    ).all()
    for signature, name, source in ours:
        if name not in functions or source != _body(functions[name]):
            conn.exec_driver_sql(f"DROP FUNCTION {signature}")
    predicate = conn.execute(
        text(
            "SELECT pg_get_expr(i.indpred, i.indrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = :name AND c.relnamespace = current_schema()::regnamespace"
        ),
        {"name": RUNNABLE_INDEX},
    ).scalar()
    wanted = set(table.runnable)
    if predicate is None or set(_QUOTED.findall(predicate)) != wanted:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {RUNNABLE_INDEX}")
        conn.exec_driver_sql(runnable_index_sql(table))
