-- Every run's console output: the lines its own segments printed, each segment's up to the
-- point a rewind moved the run on (the abandoned attempt's later lines stay with their segment:
-- console_rows over the files reads them all). A fork starts with none of its parent's.
CREATE OR REPLACE VIEW console AS
SELECT
    r.run_id,
    r.project,
    c.label,
    c.line,
    make_timestamp(CAST(c."time" * 1e6 AS BIGINT)) AS "time",
    c.step,
    c.stream,
    CASE WHEN c.stream = 'stderr' THEN 'error' ELSE '' END AS level,
    c.content,
    c.segment
FROM own_segments AS r
JOIN console_rows(getvariable('runlake_console')) AS c
    ON c.run_id = r.run_id AND c.segment = r.segment AND c.step > r.step_lo AND c.step <= r.step_hi;
