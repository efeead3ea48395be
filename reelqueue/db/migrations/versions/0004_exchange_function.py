"""finish and claim in one round trip: reelqueue_exchange; drop two unread indexes

Revision ID: 0004
Revises: 0003
"""

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every index on tasks is paid on every claim and every completion (those updates
# change indexed columns, so none is HOT); these two served no query.
UNREAD_INDEXES = {
    "ix_tasks_status_channel": "status, channel",
    "ix_tasks_data_source_id": "data_source_id",
}

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
    OUT moved bigint[],
    OUT claimed tasks[]
)
LANGUAGE plpgsql AS $$
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
    IF p_limit > 0 THEN
        -- Claims take turns, so the running counts below hold until this transaction
        -- ends; each statement from here on sees what committed before the lock. They
        -- are counted before this worker's finishes: it may claim only what is free
        -- beyond the slots it holds. Were it to refill those unseen, a fleet at its caps
        -- would keep its work on the workers that have it and starve the rest.
        PERFORM pg_advisory_xact_lock(p_lock_key);
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

    IF p_limit > 0 THEN
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
                SELECT u.channel, u.o,
                       (SELECT max(s.locked_at) FROM tasks s
                        WHERE s.channel = u.channel) AS last_served
                FROM unnest(p_channels) WITH ORDINALITY AS u(channel, o)
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
                LIMIT least(free[ch.o], p_limit)
                FOR UPDATE SKIP LOCKED
            ) l
            ORDER BY l.priority, turn, ch.last_served NULLS FIRST, l.created_at, l.id
        LOOP
            EXIT WHEN n >= p_limit;
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
    " text[], int, interval, text[], int[], text[], int[], bigint)"
)
CLAIM_SIGNATURE = (
    "reelqueue_claim(text, int, interval, text[], int[], text[], int[], text[], text[],"
    " text[], text[], text[], bigint)"
)


def upgrade() -> None:
    op.execute(EXCHANGE_FUNCTION)
    op.execute(f"DROP FUNCTION IF EXISTS {CLAIM_SIGNATURE}")
    for name in UNREAD_INDEXES:
        op.drop_index(name, table_name="tasks")
    # Partial, so that only "when was this channel last served" can use it: as a full
    # index on (channel, ...) the planner would take it for the runnable scan too.
    op.drop_index("ix_tasks_channel_locked_at", table_name="tasks")
    op.execute(
        "CREATE INDEX ix_tasks_channel_locked_at ON tasks (channel, locked_at)"
        " WHERE locked_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_channel_locked_at", table_name="tasks")
    op.create_index("ix_tasks_channel_locked_at", "tasks", ["channel", "locked_at"])
    for name, columns in UNREAD_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON tasks ({columns})")
    previous = importlib.import_module("reelqueue.db.migrations.versions.0003_claim_function")
    op.execute(previous.CLAIM_FUNCTION)
    op.execute(f"DROP FUNCTION IF EXISTS {EXCHANGE_SIGNATURE}")
