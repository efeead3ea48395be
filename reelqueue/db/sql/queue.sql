-- The queue's hot path, installed at every `reelqueue db upgrade` (reelqueue/db/queue_sql.py).
-- {{name}} marks a constant rendered from the status table (reelqueue/statuses.py):
--   {{queued}}          the status a task enters the pipeline at (it may resume any step)
--   {{runnable}}        every waiting status, as ix_tasks_runnable's predicate lists them
--   {{status_of}}       each waiting or running status with a step ...
--   {{step_of}}         ... and that step, in the same order
--   {{running_step}}    each step ...
--   {{running_status}}  ... and the status a task shows while it runs

-- reelqueue_claim_lock --
-- Take the fleet-wide claim lock, shared or alone, and return the fleet's slots: every
-- claiming connection is tagged (application_name) with its worker's slots, the most one
-- claim of it can take, and the tags are summed after the lock is held. Caps stay exact:
-- of the claims that share the lock and take tasks, the last to sum the tags saw every
-- other's (each tagged before it summed), and it shared only if each cap had room for
-- what runs plus all those slots; a claim near a cap takes the lock alone. All of it
-- (tag, transaction-scoped lock, counts) lives in the claim's one transaction on one
-- server connection, so a transaction-pooling PgBouncer changes nothing: a tag left on
-- an idle connection only counts slots twice, so claims go alone sooner.
CREATE OR REPLACE FUNCTION reelqueue_claim_lock(
    p_lock_key bigint, p_worker text, p_slots int, p_shared boolean
) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    tag text := left('reelqueue worker ' || p_slots || ' ' || p_worker, 63);
BEGIN
    IF current_setting('application_name') IS DISTINCT FROM tag THEN
        PERFORM set_config('application_name', tag, false);
    END IF;
    IF p_shared THEN
        PERFORM pg_advisory_xact_lock_shared(p_lock_key);
    ELSE
        PERFORM pg_advisory_xact_lock(p_lock_key);
    END IF;
    RETURN (SELECT coalesce(sum(substring(a.application_name
                                          FROM '^reelqueue worker (\d+) ')::int), 0)
            FROM pg_stat_get_activity(NULL) a
            WHERE a.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND a.application_name LIKE 'reelqueue worker %');
END;
$$;

-- reelqueue_exchange --
-- Record a worker's finished tasks and claim its next ones, in one statement.
-- p_finished: [{"id", "expected", "final", "columns": {...}, "hops": [{"from_status",
-- "to_status", "reason"}, ...]}, ...]; a finish moves its task only if this worker still
-- holds it in its expected status.
CREATE OR REPLACE FUNCTION reelqueue_exchange(
    p_worker text,
    p_finished jsonb,
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
    OUT steps text[],
    OUT tight boolean
)
LANGUAGE plpgsql
-- Planned once per session: the plans do not depend on the arguments' values (the
-- runnable scan walks its index in order whatever they are), and re-planning the
-- claim query on every call costs more than running it.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    status_of CONSTANT text[] := {{status_of}};
    step_of CONSTANT text[] := {{step_of}};
    running_step CONSTANT text[] := {{running_step}};
    running_status CONSTANT text[] := {{running_status}};
    actor text := 'worker:' || p_worker;
    fleet int;
    woken bigint[] := '{}';
    free int[];
    step_free int[];
    full_steps text[] := '{}';
    uncapped boolean := true;
    blocked text[] := '{}';
    queued_step text := step_of[array_position(status_of, {{queued}})];
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
        -- While every cap has room for the running tasks plus the whole fleet's slots,
        -- no set of claims running side by side can pass a cap: claims then share the
        -- lock. Otherwise they take it alone and in turns (a shared claim that finds
        -- the caps tight claims nothing, and says so). Either way the counts below hold
        -- until this transaction ends; each statement from here on sees what committed
        -- before the lock. They are counted before this worker's finishes: it may claim
        -- only what is free beyond the slots it holds. Were it to refill those unseen, a
        -- fleet at its caps would keep its work on the workers that have it and starve
        -- the rest.
        fleet := reelqueue_claim_lock(p_lock_key, p_worker, p_slots, p_shared);
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
                             WHERE m.step = ANY(full_steps) AND m.status <> {{queued}});
        END IF;
        tight := EXISTS (SELECT 1 FROM unnest(free) AS f(n) WHERE f.n < fleet)
              OR EXISTS (SELECT 1 FROM unnest(step_free) AS f(n) WHERE f.n < fleet);
    END IF;

    IF jsonb_array_length(p_finished) > 0 THEN
        WITH finished AS (
            SELECT (f.item ->> 'id')::bigint AS id, f.item ->> 'expected' AS expected,
                   f.item ->> 'final' AS final, f.item -> 'columns' AS vals,
                   f.item -> 'hops' AS hops, f.o
            FROM jsonb_array_elements(p_finished) WITH ORDINALITY AS f(item, o)
        ), done AS (
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
            FROM finished u
            WHERE t.id = u.id AND t.locked_by = p_worker AND t.status = u.expected
            RETURNING t.id, t.notion_page_id, t.status, t.page_missing
        ), history AS (
            INSERT INTO task_events (task_id, from_status, to_status, actor, reason)
            SELECT d.id, h.hop ->> 'from_status', h.hop ->> 'to_status', actor,
                   h.hop ->> 'reason'
            FROM done d
            JOIN finished u ON u.id = d.id
            CROSS JOIN LATERAL jsonb_array_elements(u.hops) WITH ORDINALITY AS h(hop, o)
            ORDER BY u.o, h.o
        ), pushes AS (
            INSERT INTO outbox (task_id, notion_page_id, properties)
            SELECT d.id, d.notion_page_id, jsonb_build_object('status', d.status) FROM done d
        )
        SELECT coalesce(array_agg(d.id), '{}'),
               coalesce(array_agg(d.id) FILTER (WHERE d.status IN ({{runnable}})
                                                 AND d.page_missing IS NULL), '{}')
          INTO moved, woken
          FROM done d;
    END IF;

    IF p_limit > 0 AND NOT (p_shared AND tight) THEN
        -- Priority; then each channel's n-th task before any channel's (n+1)-th, the
        -- channel served least recently first; then first in, first out. Tasks of a
        -- step at its cap are passed over in the scan, so they hold nothing back; so are
        -- tasks whose page is missing (moved out, trashed, unshared), whatever their
        -- run_after: a retry set by a step that ended after the page went waits too. (The
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
                       CASE WHEN t.status = {{queued}} THEN coalesce(t.resume_step, queued_step)
                            ELSE step_of[array_position(status_of, t.status)] END AS step
                FROM tasks t
                WHERE t.channel = ch.channel
                  AND t.status IN ({{runnable}})
                  AND t.run_after <= now()
                  AND t.locked_by IS NULL
                  AND t.page_missing IS NULL
                  AND (uncapped
                       OR (NOT (t.status = ANY(blocked))
                           AND NOT (t.status = {{queued}}
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
    steps := picked_step;

    IF cardinality(moved) > 0 OR n > 0 THEN
        PERFORM pg_notify('reelqueue_outbox', '');
    END IF;
    -- Tasks made runnable that this worker did not take at once wake the others.
    IF EXISTS (SELECT 1 FROM unnest(woken) AS w(id) WHERE w.id <> ALL(picked_ids)) THEN
        PERFORM pg_notify('reelqueue_tasks', '');
    END IF;
END;
$$;
