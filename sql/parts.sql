-- The file index: every history part with its step range, from listing segment directories.
CREATE TABLE IF NOT EXISTS parts (
    path     VARCHAR PRIMARY KEY,
    run_id   VARCHAR NOT NULL,
    segment  BIGINT NOT NULL,
    step_lo  BIGINT NOT NULL,
    step_hi  BIGINT NOT NULL,
    bytes    BIGINT
);
