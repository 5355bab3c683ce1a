-- The files of runs' console lines and system metrics (streams/project=<p>/run_id=<id>/
-- segment=<k>/<stream>-<t0>-<label>-<id>.parquet), from the commit log or a listing.
CREATE TABLE IF NOT EXISTS stream_files (
    path     VARCHAR NOT NULL PRIMARY KEY,
    run_id   VARCHAR NOT NULL,
    segment  BIGINT NOT NULL,
    stream   VARCHAR NOT NULL,  -- console / system
    label    VARCHAR NOT NULL,  -- the writing process's label ("" alone)
    bytes    BIGINT
);
