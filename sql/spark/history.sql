-- Spark SQL: every run's effective history, long: one equi-join of the lineage with the raw
-- rows plus a range condition (runlake.spark). The same as DuckDB's `history` (sql/history.sql).
CREATE OR REPLACE TEMP VIEW history AS
SELECT
    l.run_id,
    h.step,
    h.key,
    h.value,
    h.text,
    h.run_id AS source_run_id,
    h.segment AS source_segment,
    l.depth AS source_depth
FROM lineage AS l
JOIN raw_history AS h
    ON h.run_id = l.ancestor_run_id
   AND h.segment = l.ancestor_segment
   AND h.step > l.step_lo
   AND h.step <= l.step_hi
