-- The materialised ancestor walk: for every node (node_run_id, node_segment), each ancestor
-- node (run_id, segment) at `depth` and the steps step_lo < step <= step_hi it contributes.
-- Written by runlake from the lineage rows (read/lineage.py walk(): the one definition);
-- segments are write-once, so a node's rows never change once its chain is known.
CREATE TABLE IF NOT EXISTS closure (
    node_run_id  VARCHAR NOT NULL,
    node_segment BIGINT NOT NULL,
    depth        BIGINT NOT NULL,
    run_id       VARCHAR NOT NULL,
    segment      BIGINT NOT NULL,
    step_lo      BIGINT NOT NULL,
    step_hi      BIGINT NOT NULL
);
