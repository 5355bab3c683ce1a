-- Every run's own segments (not a fork's parent's), each with the steps it keeps: a segment a
-- rewind moved past keeps its steps up to the rewind point. What the streams beside a run's
-- history (its console lines, its system metrics) are read through.
CREATE OR REPLACE VIEW own_segments AS
SELECT r.run_id, r.project, l.segment, l.step_lo, l.step_hi
FROM run_meta AS r
JOIN closure AS l ON l.node_run_id = r.run_id AND l.node_segment = r.segment AND l.run_id = r.run_id;
