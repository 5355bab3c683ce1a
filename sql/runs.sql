-- One row per run: identity, state, where it was forked from, and how far it got. A deleted
-- run (Api run.delete()) is not listed; the lineage and history views still read its rows.
-- last_step: the highest step of the current segment's effective history that is durable
-- (a fork or rewind that has logged nothing yet has reached its cutoff).
CREATE OR REPLACE VIEW runs AS
SELECT
    r.run_id,
    r.project,
    r.name,
    r.state,
    to_timestamp(r.created_at) AS created_at,
    CASE WHEN s0.kind = 'fork' THEN s0.parent_run_id END AS parent_run_id,
    CASE WHEN s0.kind = 'fork' THEN s0.cutoff END AS fork_step,
    CASE
        WHEN sc.cutoff IS NULL THEN p.own_last
        ELSE greatest(coalesce(p.own_last, sc.cutoff), sc.cutoff)
    END AS last_step,
    r.config,
    r.summary,
    r.segment,
    r.notes,
    r.tags,
    r."group",
    r.job_type,
    r.entity,
    r.source,
    r.source_id,
    r.metadata,
    json_extract_string(r.metadata, '$.sweep_id') AS sweep_id,
    r.metrics,
    to_timestamp(r.heartbeat) AS heartbeat_at,
    to_timestamp(r.finished_at) AS finished_at,
    r.exit_code
FROM run_meta AS r
LEFT JOIN segments AS s0 ON s0.run_id = r.run_id AND s0.segment = 0
LEFT JOIN segments AS sc ON sc.run_id = r.run_id AND sc.segment = r.segment
LEFT JOIN (
    SELECT run_id, segment, max(step_hi) AS own_last FROM parts GROUP BY run_id, segment
) AS p ON p.run_id = r.run_id AND p.segment = r.segment
WHERE r.deleted_at IS NULL;
