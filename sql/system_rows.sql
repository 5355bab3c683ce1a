-- The rows of system-metrics files (typed explicitly, as part_rows).
CREATE OR REPLACE MACRO system_rows(files) AS TABLE
SELECT project, run_id, segment, "time", runtime, step, key, value, label
FROM read_parquet(
    files,
    hive_partitioning = true,
    hive_types = {'project': VARCHAR, 'run_id': VARCHAR, 'segment': BIGINT}
);
