-- Spark SQL: every run's chain of ancestor nodes, from the exported closure (runlake.spark).
-- The same columns and rows as DuckDB's `lineage` view (sql/lineage.sql).
CREATE OR REPLACE TEMP VIEW lineage AS
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
FROM runs AS r
JOIN closure AS c ON c.node_run_id = r.run_id AND c.node_segment = r.segment
JOIN segments AS s ON s.run_id = c.run_id AND s.segment = c.segment
