-- Every run's chain of ancestor nodes, from its current segment up to its root.
-- ancestor rows with step_lo < step <= step_hi belong to run_id's effective history.
CREATE OR REPLACE VIEW lineage AS
WITH RECURSIVE walk(run_id, depth, node_run_id, node_segment, step_hi) AS (
    SELECT run_id, 0::BIGINT, run_id, segment, 9223372036854775807::BIGINT
    FROM run_meta
    UNION ALL
    SELECT w.run_id, w.depth + 1, s.parent_run_id, s.parent_segment, least(w.step_hi, s.cutoff)
    FROM walk AS w
    JOIN segments AS s ON s.run_id = w.node_run_id AND s.segment = w.node_segment
    WHERE s.parent_run_id IS NOT NULL
)
SELECT
    w.run_id,
    w.depth,
    w.node_run_id AS ancestor_run_id,
    w.node_segment AS ancestor_segment,
    s.project AS ancestor_project,
    s.kind,
    s.parent_run_id,
    s.parent_segment,
    s.cutoff,
    coalesce(s.cutoff, -1) AS step_lo,
    w.step_hi
FROM walk AS w
JOIN segments AS s ON s.run_id = w.node_run_id AND s.segment = w.node_segment;
