-- The lineage rows: one per (run_id, segment) node, folded from meta/segment-<k>.json.
-- A node inherits its parent node's effective rows with step <= cutoff; its own rows are > cutoff.
CREATE TABLE IF NOT EXISTS segments (
    run_id         VARCHAR NOT NULL,
    segment        BIGINT NOT NULL,
    project        VARCHAR NOT NULL,
    kind           VARCHAR NOT NULL,  -- root | fork | rewind
    parent_run_id  VARCHAR,
    parent_segment BIGINT,
    cutoff         BIGINT,
    created_at     DOUBLE,
    PRIMARY KEY (run_id, segment)
);
