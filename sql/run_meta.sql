-- One row per run, folded from runs/<project>/<run_id>/meta/{run,state}.json.
-- `state` is derived by runlake: a `running` run whose heartbeat is stale reads `crashed`
-- (`preempted` after mark_preempting()).
CREATE TABLE IF NOT EXISTS run_meta (
    run_id      VARCHAR PRIMARY KEY,
    project     VARCHAR NOT NULL,
    name        VARCHAR,
    notes       VARCHAR,
    tags        VARCHAR[],
    created_at  DOUBLE,
    segment     BIGINT,   -- the current segment
    raw_state   VARCHAR,  -- as the writer last wrote it
    state       VARCHAR,  -- running | finished | failed | crashed | preempted
    heartbeat   DOUBLE,
    host        VARCHAR,
    pid         BIGINT,
    pid_start   VARCHAR,
    finished_at DOUBLE,
    exit_code   BIGINT,
    config      VARCHAR,  -- JSON object
    summary     VARCHAR,  -- JSON object
    seen_at     DOUBLE,   -- when this state was written, by the storage's clock (else when first seen): caps a heartbeat from a clock ahead
    "group"     VARCHAR,  -- W&B's run attributes (name, notes and tags above): the writer's latest word
    job_type    VARCHAR,
    entity      VARCHAR,
    source      VARCHAR,  -- an imported run: where it came from (wandb, mlflow, tensorboard, neptune)
    source_id   VARCHAR,  -- and its id there
    metadata    VARCHAR,  -- JSON object: init's other arguments worth keeping (settings, mode, ...)
    metrics     VARCHAR,  -- JSON list: define_metric definitions
    preempting  BOOLEAN,  -- mark_preempting() was called: a death reads `preempted`
    parts_written BIGINT, -- part files the current segment's writers stored (null: an older writer)
    deleted_at  DOUBLE    -- Api run.delete(): hidden from `runs`, its rows kept while a fork reads them
);
