-- The ancestors of one node (rid, seg), nearest first, with the step range each contributes:
-- own rows of ancestor A with step_lo < step <= step_hi. Reads the materialised `closure`.
CREATE OR REPLACE MACRO closure_of(rid, seg) AS TABLE
SELECT
    c.depth,
    c.run_id,
    c.segment,
    s.project,
    s.kind,
    s.parent_run_id,
    s.parent_segment,
    s.cutoff,
    c.step_lo,
    c.step_hi
FROM closure AS c
JOIN segments AS s ON s.run_id = c.run_id AND s.segment = c.segment
WHERE c.node_run_id = rid AND c.node_segment = seg
ORDER BY c.depth;
