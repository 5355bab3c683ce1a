-- The rows of console files (typed explicitly, as part_rows).
CREATE OR REPLACE MACRO console_rows(files) AS TABLE
SELECT project, run_id, segment, line, "time", step, stream, content, label
FROM read_parquet(
    files,
    hive_partitioning = true,
    hive_types = {'project': VARCHAR, 'run_id': VARCHAR, 'segment': BIGINT}
);
