-- The ancestors of one node (rid, seg), nearest first, with the step range each contributes:
-- own rows of ancestor A with step_lo < step <= step_hi. The node is in the recursive anchor,
-- so only its own chain is walked (a view filtered afterwards walks every chain: DESIGN.md).
CREATE OR REPLACE MACRO closure_of(rid, seg) AS TABLE
WITH RECURSIVE walk(depth, run_id, segment, step_hi) AS (
    SELECT 0::BIGINT, rid::VARCHAR, seg::BIGINT, 9223372036854775807::BIGINT
    UNION ALL
    SELECT w.depth + 1, s.parent_run_id, s.parent_segment, least(w.step_hi, s.cutoff)
    FROM walk AS w
    JOIN segments AS s ON s.run_id = w.run_id AND s.segment = w.segment
    WHERE s.parent_run_id IS NOT NULL
)
SELECT
    w.depth,
    w.run_id,
    w.segment,
    s.project,
    s.kind,
    s.parent_run_id,
    s.parent_segment,
    s.cutoff,
    coalesce(s.cutoff, -1) AS step_lo,
    w.step_hi
FROM walk AS w
JOIN segments AS s ON s.run_id = w.run_id AND s.segment = w.segment;
