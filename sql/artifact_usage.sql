-- Every time a run logged ("output") or used ("input") an artifact version, folded from
-- runs/<project>/<run_id>/meta/artifact-<time_ns>-<id>.json. "Which runs used the checkpoint run A
-- logged at step 500" is a join of `artifacts` with this table.
CREATE TABLE IF NOT EXISTS artifact_usage (
    path             VARCHAR PRIMARY KEY,  -- the record's file
    run_id           VARCHAR NOT NULL,
    project          VARCHAR NOT NULL,     -- the run's project
    direction        VARCHAR NOT NULL,     -- output | input
    artifact_project VARCHAR NOT NULL,
    name             VARCHAR NOT NULL,
    version          BIGINT NOT NULL,
    type             VARCHAR,
    digest           VARCHAR,
    step             BIGINT,               -- the run's step when it logged or used it
    segment          BIGINT,               -- and its segment then
    used_at          TIMESTAMP WITH TIME ZONE,
    size             BIGINT
);
