-- Every run's effective history, long: its ancestors' rows up to each fork or rewind point,
-- then its own. The ranges of one run's ancestors are disjoint: no row needs de-duplicating.
CREATE OR REPLACE VIEW history AS
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
   AND h.step <= l.step_hi;
