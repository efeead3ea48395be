"""claim in one round trip: the reelqueue_claim function

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLAIM_FUNCTION = """
CREATE OR REPLACE FUNCTION reelqueue_claim(
    p_worker text,
    p_limit int,
    p_lease interval,
    p_channels text[],
    p_channel_caps int[],
    p_step_names text[],
    p_step_caps int[],
    p_status_of text[],
    p_step_of text[],
    p_running_step text[],
    p_running_status text[],
    p_runnable text[],
    p_lock_key bigint
) RETURNS SETOF tasks
LANGUAGE plpgsql AS $$
DECLARE
    slots jsonb;
    step_slots jsonb;
    picked_ids bigint[] := '{}';
    picked_to text[] := '{}';
    picked_from text[] := '{}';
    picked_step text[] := '{}';
    c record;
    step_name text;
BEGIN
    IF p_limit <= 0 THEN
        RETURN;
    END IF;
    -- Claims take turns, so the running counts below hold until this transaction ends.
    PERFORM pg_advisory_xact_lock(p_lock_key);
    SELECT coalesce(jsonb_object_agg(cap.channel, cap.cap - coalesce(b.n, 0)), '{}')
      INTO slots
      FROM unnest(p_channels, p_channel_caps) AS cap(channel, cap)
      LEFT JOIN (SELECT channel, count(*) AS n FROM tasks
                 WHERE locked_by IS NOT NULL GROUP BY channel) b ON b.channel = cap.channel;
    SELECT coalesce(jsonb_object_agg(cap.step, cap.cap - coalesce(b.n, 0)), '{}')
      INTO step_slots
      FROM unnest(p_step_names, p_step_caps) AS cap(step, cap)
      LEFT JOIN (SELECT m.step, count(*) AS n FROM tasks t
                 JOIN unnest(p_status_of, p_step_of) AS m(status, step) ON m.status = t.status
                 WHERE t.locked_by IS NOT NULL GROUP BY m.step) b ON b.step = cap.step;
    -- Priority; then each channel's n-th task before any channel's (n+1)-th, the channel
    -- served least recently first; then first in, first out.
    FOR c IN
        SELECT cand.*,
               row_number() OVER (PARTITION BY cand.channel
                                  ORDER BY cand.priority, cand.created_at, cand.id) AS turn
        FROM (
            SELECT l.*, (SELECT max(s.locked_at) FROM tasks s
                         WHERE s.channel = ch.channel) AS last_served
            FROM unnest(p_channels) AS ch(channel)
            CROSS JOIN LATERAL (
                SELECT t.id, t.channel, t.status, t.priority, t.created_at, t.resume_step
                FROM tasks t
                WHERE t.channel = ch.channel
                  AND t.status = ANY(p_runnable)
                  AND t.run_after <= now()
                  AND t.locked_by IS NULL
                ORDER BY t.priority, t.created_at, t.id
                LIMIT greatest(least(coalesce((slots ->> ch.channel)::int, 0), p_limit), 0) * 2
                FOR UPDATE SKIP LOCKED
            ) l
        ) cand
        ORDER BY cand.priority, turn, cand.last_served NULLS FIRST, cand.created_at, cand.id
    LOOP
        EXIT WHEN coalesce(array_length(picked_ids, 1), 0) >= p_limit;
        IF c.status = 'queued' AND c.resume_step IS NOT NULL THEN
            step_name := c.resume_step;
        ELSE
            step_name := p_step_of[array_position(p_status_of, c.status)];
        END IF;
        CONTINUE WHEN step_name IS NULL;
        CONTINUE WHEN coalesce((slots ->> c.channel)::int, 0) <= 0;
        CONTINUE WHEN step_slots ? step_name AND (step_slots ->> step_name)::int <= 0;
        slots := jsonb_set(slots, ARRAY[c.channel], to_jsonb((slots ->> c.channel)::int - 1));
        IF step_slots ? step_name THEN
            step_slots := jsonb_set(
                step_slots, ARRAY[step_name], to_jsonb((step_slots ->> step_name)::int - 1)
            );
        END IF;
        picked_ids := picked_ids || c.id;
        picked_from := picked_from || c.status;
        picked_step := picked_step || step_name;
        picked_to := picked_to || CASE
            WHEN c.status = 'queued' AND c.resume_step IS NULL THEN 'claimed'
            ELSE p_running_status[array_position(p_running_step, step_name)]
        END;
    END LOOP;
    IF coalesce(array_length(picked_ids, 1), 0) = 0 THEN
        RETURN;
    END IF;
    INSERT INTO task_events (task_id, from_status, to_status, actor, reason)
    SELECT u.id, u.from_status, u.to_status, 'worker:' || p_worker, 'claimed for ' || u.step
    FROM unnest(picked_ids, picked_from, picked_to, picked_step)
         AS u(id, from_status, to_status, step);
    INSERT INTO outbox (task_id, notion_page_id, properties)
    SELECT t.id, t.notion_page_id, jsonb_build_object('status', u.to_status)
    FROM tasks t JOIN unnest(picked_ids, picked_to) AS u(id, to_status) ON u.id = t.id;
    PERFORM pg_notify('reelqueue_outbox', '');
    RETURN QUERY
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
    RETURNING t.*;
END;
$$;
"""


def upgrade() -> None:
    op.execute(CLAIM_FUNCTION)


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS reelqueue_claim(text, int, interval, text[], int[], text[],"
        " int[], text[], text[], text[], text[], text[], bigint)"
    )
