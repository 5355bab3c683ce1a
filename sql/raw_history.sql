-- Every physical history row of the root, archived segments included.
-- runlake sets the variable runlake_parts to the part files of the `parts` index.
CREATE OR REPLACE VIEW raw_history AS
SELECT project, run_id, segment, step, key, value, text
FROM read_parquet(
    getvariable('runlake_parts'),
    hive_partitioning = true,
    hive_types = {'project': VARCHAR, 'run_id': VARCHAR, 'segment': BIGINT}
);
