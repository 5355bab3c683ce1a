-- One row per run, folded from runs/<project>/<run_id>/meta/{run,state}.json.
-- `state` is derived by runlake: a `running` run whose heartbeat is stale reads `crashed`.
CREATE TABLE IF NOT EXISTS run_meta (
    run_id      VARCHAR PRIMARY KEY,
    project     VARCHAR NOT NULL,
    name        VARCHAR,
    notes       VARCHAR,
    tags        VARCHAR[],
    created_at  DOUBLE,
    segment     BIGINT,   -- the current segment
    raw_state   VARCHAR,  -- as the writer last wrote it
    state       VARCHAR,  -- running | finished | failed | crashed
    heartbeat   DOUBLE,
    host        VARCHAR,
    pid         BIGINT,
    pid_start   VARCHAR,
    finished_at DOUBLE,
    exit_code   BIGINT,
    config      VARCHAR,  -- JSON object
    summary     VARCHAR,  -- JSON object
    seen_at     DOUBLE    -- when a reader first saw this state (its clock): caps a heartbeat from a clock ahead
);
