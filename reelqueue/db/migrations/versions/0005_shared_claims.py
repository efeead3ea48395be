"""claims share the claim lock while no cap can bind; exchange plans kept; history and
outbox rows without a per-row foreign-key check

reelqueue_exchange takes the worker's slots, tags its connection with them, and says
when the caps are tight. The foreign keys from task_events and outbox to tasks go:
those rows are written only by statements that take the task ids from the tasks rows
they change, and tasks are never deleted; the check they cost on every row (a
KEY SHARE lock on the task) was about a sixth of a worker's database time. The outbox's
task_id index, kept for the cascade, goes with them.

Revision ID: 0005
Revises: 0004
"""

import importlib
from collections.abc import Sequence
from types import ModuleType

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The runnable statuses, as ix_tasks_runnable's predicate has them (migration 0002).
RUNNABLE = (
    "'queued', 'assets_approved', 'composites_ready', 'video_approved', 'audio_approved',"
    " 'sfx_ready', 'assembly_ready', 'approved'"
)

EXCHANGE_FUNCTION = """
CREATE OR REPLACE FUNCTION reelqueue_exchange(
    p_worker text,
    p_done_ids bigint[],
    p_done_expected text[],
    p_done_final text[],
    p_done_values jsonb[],
    p_hop_tasks bigint[],
    p_hop_from text[],
    p_hop_to text[],
    p_hop_reasons text[],
    p_limit int,
    p_lease interval,
    p_channels text[],
    p_channel_caps int[],
    p_step_names text[],
    p_step_caps int[],
    p_lock_key bigint,
    p_slots int,
    p_shared boolean,
    OUT moved bigint[],
    OUT claimed tasks[],
    OUT tight boolean
)
LANGUAGE plpgsql
-- Planned once per session: the plans do not depend on the arguments' values (the
-- runnable scan walks its index in order whatever they are), and re-planning the
-- claim query on every call costs more than running it.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    -- The status table's steps (reelqueue.statuses): the step each runnable or
    -- running status belongs to, and the status a task shows while a step runs.
    status_of CONSTANT text[] := ARRAY[
        'queued', 'claimed', 'generating_assets', 'assets_approved', 'generating_composites',
        'composites_ready', 'generating_video', 'video_approved', 'generating_audio',
        'audio_approved', 'generating_sfx', 'sfx_ready', 'assembling', 'approved', 'uploading'];
    step_of CONSTANT text[] := ARRAY[
        'assets', 'assets', 'assets', 'composites', 'composites',
        'video', 'video', 'audio', 'audio',
        'sfx', 'sfx', 'assembly', 'assembly', 'upload', 'upload'];
    running_step CONSTANT text[] := ARRAY[
        'assets', 'composites', 'video', 'audio', 'sfx', 'assembly', 'upload'];
    running_status CONSTANT text[] := ARRAY[
        'generating_assets', 'generating_composites', 'generating_video', 'generating_audio',
        'generating_sfx', 'assembling', 'uploading'];
    actor text := 'worker:' || p_worker;
    tag text := left('reelqueue worker ' || p_slots || ' ' || p_worker, 63);
    fleet int;
    woken bigint[] := '{}';
    free int[];
    step_free int[];
    full_steps text[] := '{}';
    uncapped boolean := true;
    blocked text[] := '{}';
    queued_step text := step_of[array_position(status_of, 'queued')];
    picked_ids bigint[] := '{}';
    picked_from text[] := '{}';
    picked_to text[] := '{}';
    picked_step text[] := '{}';
    n int := 0;
    si int;
    c record;
BEGIN
    moved := '{}';
    tight := false;
    IF p_limit > 0 THEN
        -- Every claiming connection is tagged with its worker's slots (the most it can
        -- hold, so the most one claim of it can take), and the fleet's slots are summed
        -- from the tags before the running counts are taken. While every cap has room
        -- for the running tasks plus the whole fleet's slots, no set of claims running
        -- side by side can pass a cap: claims then share the lock. Otherwise they take
        -- it alone and in turns (a shared claim that finds the caps tight claims
        -- nothing, and says so). Either way the counts below hold until this
        -- transaction ends; each statement from here on sees what committed before the
        -- lock. They are counted before this worker's finishes: it may claim only what
        -- is free beyond the slots it holds. Were it to refill those unseen, a fleet at
        -- its caps would keep its work on the workers that have it and starve the rest.
        IF current_setting('application_name') IS DISTINCT FROM tag THEN
            PERFORM set_config('application_name', tag, false);
        END IF;
        IF p_shared THEN
            PERFORM pg_advisory_xact_lock_shared(p_lock_key);
        ELSE
            PERFORM pg_advisory_xact_lock(p_lock_key);
        END IF;
        SELECT coalesce(sum(substring(a.application_name FROM '^reelqueue worker (\\d+) ')::int), 0)
          INTO fleet
          FROM pg_stat_get_activity(NULL) a
         WHERE a.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND a.application_name LIKE 'reelqueue worker %';
        SELECT array_agg(cap.cap - coalesce(b.n, 0)::int ORDER BY cap.o)
          INTO free
          FROM unnest(p_channels, p_channel_caps) WITH ORDINALITY AS cap(channel, cap, o)
          LEFT JOIN (SELECT channel, count(*) AS n FROM tasks
                     WHERE locked_by IS NOT NULL GROUP BY channel) b
                 ON b.channel = cap.channel;
        IF cardinality(p_step_names) > 0 THEN
            SELECT array_agg(cap.cap - coalesce(b.n, 0)::int ORDER BY cap.o)
              INTO step_free
              FROM unnest(p_step_names, p_step_caps) WITH ORDINALITY AS cap(step, cap, o)
              LEFT JOIN (SELECT m.step, count(*) AS n FROM tasks t
                         JOIN unnest(status_of, step_of) AS m(status, step)
                           ON m.status = t.status
                         WHERE t.locked_by IS NOT NULL GROUP BY m.step) b
                     ON b.step = cap.step;
            full_steps := ARRAY(SELECT p_step_names[i]
                                FROM generate_subscripts(p_step_names, 1) AS i
                                WHERE step_free[i] <= 0);
            uncapped := cardinality(full_steps) = 0;
            blocked := ARRAY(SELECT m.status FROM unnest(status_of, step_of) AS m(status, step)
                             WHERE m.step = ANY(full_steps) AND m.status <> 'queued');
        END IF;
        tight := EXISTS (SELECT 1 FROM unnest(free) AS f(n) WHERE f.n < fleet)
              OR EXISTS (SELECT 1 FROM unnest(step_free) AS f(n) WHERE f.n < fleet);
    END IF;

    IF cardinality(p_done_ids) > 0 THEN
        WITH done AS (
            UPDATE tasks t SET
                status = u.final,
                locked_by = NULL,
                heartbeat_at = NULL,
                lease_expires_at = NULL,
                updated_at = now(),
                version = t.version + 1,
                outputs = CASE WHEN u.vals ? 'outputs' THEN u.vals -> 'outputs'
                               ELSE t.outputs END,
                step_attempts = CASE WHEN u.vals ? 'step_attempts'
                                     THEN (u.vals ->> 'step_attempts')::int
                                     ELSE t.step_attempts END,
                attempts = CASE WHEN u.vals ? 'attempts' THEN (u.vals ->> 'attempts')::int
                                ELSE t.attempts END,
                resume_step = CASE WHEN u.vals ? 'resume_step' THEN u.vals ->> 'resume_step'
                                   ELSE t.resume_step END,
                error_log = CASE WHEN u.vals ? 'error_log' THEN u.vals ->> 'error_log'
                                 ELSE t.error_log END,
                youtube_url = CASE WHEN u.vals ? 'youtube_url' THEN u.vals ->> 'youtube_url'
                                   ELSE t.youtube_url END,
                run_after = CASE WHEN u.vals ? 'run_after'
                                 THEN (u.vals ->> 'run_after')::timestamptz
                                 ELSE t.run_after END
            FROM unnest(p_done_ids, p_done_expected, p_done_final, p_done_values)
                 AS u(id, expected, final, vals)
            WHERE t.id = u.id AND t.locked_by = p_worker AND t.status = u.expected
            RETURNING t.id, t.notion_page_id, t.status, t.run_after
        ), history AS (
            INSERT INTO task_events (task_id, from_status, to_status, actor, reason)
            SELECT h.task, h.from_status, h.to_status, actor, h.reason
            FROM unnest(p_hop_tasks, p_hop_from, p_hop_to, p_hop_reasons)
                 AS h(task, from_status, to_status, reason)
            JOIN done d ON d.id = h.task
        ), pushes AS (
            INSERT INTO outbox (task_id, notion_page_id, properties)
            SELECT d.id, d.notion_page_id, jsonb_build_object('status', d.status) FROM done d
        )
        SELECT coalesce(array_agg(d.id), '{}'),
               coalesce(array_agg(d.id) FILTER (WHERE d.status IN (RUNNABLE)), '{}')
          INTO moved, woken
          FROM done d;
    END IF;

    IF p_limit > 0 AND NOT (p_shared AND tight) THEN
        -- Priority; then each channel's n-th task before any channel's (n+1)-th, the
        -- channel served least recently first; then first in, first out. Tasks of a
        -- step at its cap are passed over in the scan, so they hold nothing back. (The
        -- scan must walk ix_tasks_runnable in order and stop at the LIMIT: hence the
        -- runnable statuses written out, to match the index's predicate, and the step
        -- filters behind `uncapped`, which keeps the planner's row estimate sane.)
        FOR c IN
            SELECT l.*, ch.o, row_number() OVER (PARTITION BY ch.o
                                                 ORDER BY l.priority, l.created_at, l.id) AS turn
            FROM (
                SELECT u.channel, u.o, s.last_served
                FROM unnest(p_channels) WITH ORDINALITY AS u(channel, o)
                CROSS JOIN LATERAL (SELECT max(s.locked_at) AS last_served FROM tasks s
                                    WHERE s.channel = u.channel) s  -- once per channel
                WHERE free[u.o] > 0
            ) ch
            CROSS JOIN LATERAL (
                SELECT t.id, t.status, t.priority, t.created_at,
                       CASE WHEN t.status = 'queued' THEN coalesce(t.resume_step, queued_step)
                            ELSE step_of[array_position(status_of, t.status)] END AS step
                FROM tasks t
                WHERE t.channel = ch.channel
                  AND t.status IN (RUNNABLE)
                  AND t.run_after <= now()
                  AND t.locked_by IS NULL
                  AND (uncapped
                       OR (NOT (t.status = ANY(blocked))
                           AND NOT (t.status = 'queued'
                                    AND coalesce(t.resume_step, queued_step) = ANY(full_steps))))
                ORDER BY t.priority, t.created_at, t.id
                LIMIT least(free[ch.o], p_limit, p_slots)
                FOR UPDATE SKIP LOCKED
            ) l
            ORDER BY l.priority, turn, ch.last_served NULLS FIRST, l.created_at, l.id
        LOOP
            EXIT WHEN n >= least(p_limit, p_slots);
            CONTINUE WHEN c.step IS NULL OR free[c.o] <= 0;
            si := array_position(p_step_names, c.step);
            CONTINUE WHEN si IS NOT NULL AND step_free[si] <= 0;
            free[c.o] := free[c.o] - 1;
            IF si IS NOT NULL THEN
                step_free[si] := step_free[si] - 1;
            END IF;
            n := n + 1;
            picked_ids[n] := c.id;
            picked_from[n] := c.status;
            picked_step[n] := c.step;
            picked_to[n] := running_status[array_position(running_step, c.step)];
        END LOOP;
    END IF;

    IF n > 0 THEN
        WITH taken AS (
            UPDATE tasks t SET
                status = u.to_status,
                locked_by = p_worker,
                locked_at = now(),
                heartbeat_at = now(),
                lease_expires_at = now() + p_lease,
                attempts = CASE WHEN t.attempts = 0 THEN 1 ELSE t.attempts END,
                updated_at = now(),
                version = t.version + 1
            FROM unnest(picked_ids, picked_to) AS u(id, to_status)
            WHERE t.id = u.id
            RETURNING t.*
        ), history AS (
            INSERT INTO task_events (task_id, from_status, to_status, actor, reason)
            SELECT u.id, u.from_status, u.to_status, actor, 'claimed for ' || u.step
            FROM unnest(picked_ids, picked_from, picked_to, picked_step)
                 AS u(id, from_status, to_status, step)
        ), pushes AS (
            INSERT INTO outbox (task_id, notion_page_id, properties)
            SELECT k.id, k.notion_page_id, jsonb_build_object('status', k.status) FROM taken k
        )
        SELECT array_agg(k ORDER BY array_position(picked_ids, k.id)) INTO claimed FROM taken k;
    END IF;
    claimed := coalesce(claimed, '{}');

    IF cardinality(moved) > 0 OR n > 0 THEN
        PERFORM pg_notify('reelqueue_outbox', '');
    END IF;
    -- Tasks made runnable that this worker did not take at once wake the others.
    IF EXISTS (SELECT 1 FROM unnest(woken) AS w(id) WHERE w.id <> ALL(picked_ids)) THEN
        PERFORM pg_notify('reelqueue_tasks', '');
    END IF;
END;
$$;
""".replace("RUNNABLE", RUNNABLE)

EXCHANGE_SIGNATURE = (
    "reelqueue_exchange(text, bigint[], text[], text[], jsonb[], bigint[], text[], text[],"
    " text[], int, interval, text[], int[], text[], int[], bigint, int, boolean)"
)


def _previous() -> ModuleType:
    return importlib.import_module("reelqueue.db.migrations.versions.0004_exchange_function")


FOREIGN_KEYS = {"task_events": "fk_task_events_task_id_tasks", "outbox": "fk_outbox_task_id_tasks"}


def upgrade() -> None:
    op.execute(EXCHANGE_FUNCTION)
    op.execute(f"DROP FUNCTION IF EXISTS {_previous().EXCHANGE_SIGNATURE}")
    for table, name in FOREIGN_KEYS.items():
        op.drop_constraint(name, table, type_="foreignkey")
    op.drop_index("ix_outbox_task_id", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_task_id", "outbox", ["task_id"])
    for table, name in FOREIGN_KEYS.items():
        op.create_foreign_key(name, table, "tasks", ["task_id"], ["id"], ondelete="CASCADE")
    op.execute(_previous().EXCHANGE_FUNCTION)
    op.execute(f"DROP FUNCTION IF EXISTS {EXCHANGE_SIGNATURE}")
