-- One row per alert a run raised (run.alert() / runlake.alert()), folded from
-- runs/<project>/<run_id>/meta/alert-<time_ns>-<id>.json. Alerts suppressed by wait_duration
-- (the same title again too soon) were never written.
CREATE TABLE IF NOT EXISTS alerts (
    path     VARCHAR PRIMARY KEY,  -- the alert's file (one file per alert)
    run_id   VARCHAR NOT NULL,
    project  VARCHAR NOT NULL,
    segment  BIGINT,               -- the run's segment when it was raised
    step     BIGINT,               -- the run's step when it was raised
    alerted_at TIMESTAMP WITH TIME ZONE,
    level    VARCHAR,              -- INFO | WARN | ERROR
    title    VARCHAR,
    text     VARCHAR
);
