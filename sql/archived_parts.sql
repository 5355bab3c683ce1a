-- The part files an archived segment had when a rewind or re-fork took its run past it (from
-- the new segment's manifest): a reader that finds fewer knows one was deleted or lost. The
-- current segment's count is in run_meta.parts_written.
CREATE TABLE IF NOT EXISTS archived_parts (
    run_id  VARCHAR NOT NULL,
    segment BIGINT NOT NULL,
    parts   BIGINT NOT NULL,
    PRIMARY KEY (run_id, segment)
);
