-- The file index: which file holds which step range of which node, from listing segment
-- directories (a node's own parts) and from pack manifests (pack = true: a file shared by many
-- finished nodes, with run_id and segment as columns). A node's parts that a pack holds are
-- left out, so every row is indexed exactly once.
CREATE TABLE IF NOT EXISTS parts (
    path     VARCHAR NOT NULL,
    run_id   VARCHAR NOT NULL,
    segment  BIGINT NOT NULL,
    step_lo  BIGINT NOT NULL,
    step_hi  BIGINT NOT NULL,
    bytes    BIGINT,
    pack     BOOLEAN NOT NULL DEFAULT false,
    files    BIGINT,   -- the part files this row stands for: 1, or a pack member's (null: unknown)
    PRIMARY KEY (path, run_id, segment)
);
