-- Every run's system metrics (W&B's `system.*` keys), long, on their own timeline: sampled by
-- its own segments' processes, each segment's up to the point a rewind moved the run on. A fork
-- starts with none of its parent's. (Named so: `system` is a DuckDB schema.)
CREATE OR REPLACE VIEW system_metrics AS
SELECT
    r.run_id,
    r.project,
    m.label,
    make_timestamp(CAST(m."time" * 1e6 AS BIGINT)) AS "time",
    m.runtime,
    m.step,
    m.key,
    m.value,
    m.segment
FROM own_segments AS r
JOIN system_rows(getvariable('runlake_system')) AS m
    ON m.run_id = r.run_id AND m.segment = r.segment AND m.step > r.step_lo AND m.step <= r.step_hi;
