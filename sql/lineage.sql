-- Every run's chain of ancestor nodes, from its current segment up to its root.
-- ancestor rows with step_lo < step <= step_hi belong to run_id's effective history.
CREATE OR REPLACE VIEW lineage AS
SELECT
    r.run_id,
    c.depth,
    c.run_id AS ancestor_run_id,
    c.segment AS ancestor_segment,
    s.project AS ancestor_project,
    s.kind,
    s.parent_run_id,
    s.parent_segment,
    s.cutoff,
    c.step_lo,
    c.step_hi
FROM run_meta AS r
JOIN closure AS c ON c.node_run_id = r.run_id AND c.node_segment = r.segment
JOIN segments AS s ON s.run_id = c.run_id AND s.segment = c.segment;
