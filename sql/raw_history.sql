-- Every physical history row of the root, archived segments included.
-- runlake sets the variables runlake_parts (nodes' own part files, hive-partitioned by
-- project/run_id/segment) and runlake_packs (pack files: run_id and segment are columns).
CREATE OR REPLACE VIEW raw_history AS
SELECT project, run_id, segment, step, key, value, text
FROM read_parquet(
    getvariable('runlake_parts'),
    hive_partitioning = true,
    hive_types = {'project': VARCHAR, 'run_id': VARCHAR, 'segment': BIGINT}
)
UNION ALL
SELECT project, run_id, segment, step, key, value, text
FROM read_parquet(
    getvariable('runlake_packs'),
    hive_partitioning = true,
    hive_types = {'project': VARCHAR}
);
