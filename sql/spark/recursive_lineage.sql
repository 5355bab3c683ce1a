-- FALLBACK, for shallow trees only: the lineage walked with WITH RECURSIVE from `segments`
-- alone (no exported closure). Spark runs one job per recursion level (~0.3 s each), stops
-- at spark.sql.cte.recursion.level.limit (100 by default), and a whole-root walk of a few
-- hundred chained runs can overflow the driver's stack: the exported closure
-- (sql/spark/lineage.sql) is the default. Same columns as `lineage`.
CREATE OR REPLACE TEMP VIEW lineage AS
WITH RECURSIVE walk (run_id, depth, ancestor_run_id, ancestor_segment, step_lo, step_hi) AS (
    SELECT r.run_id, 0, r.run_id, r.segment,
           coalesce(s.cutoff, -1), CAST(9223372036854775807 AS BIGINT)
    FROM runs AS r JOIN segments AS s ON s.run_id = r.run_id AND s.segment = r.segment
    UNION ALL
    SELECT w.run_id, w.depth + 1, s.parent_run_id, s.parent_segment,
           coalesce(p.cutoff, -1), least(w.step_hi, s.cutoff)
    FROM walk AS w
    JOIN segments AS s ON s.run_id = w.ancestor_run_id AND s.segment = w.ancestor_segment
    JOIN segments AS p ON p.run_id = s.parent_run_id AND p.segment = s.parent_segment
    WHERE s.parent_run_id IS NOT NULL
)
SELECT w.run_id, w.depth, w.ancestor_run_id, w.ancestor_segment, s.project AS ancestor_project,
       s.kind, s.parent_run_id, s.parent_segment, s.cutoff, w.step_lo, w.step_hi
FROM walk AS w JOIN segments AS s ON s.run_id = w.ancestor_run_id AND s.segment = w.ancestor_segment
