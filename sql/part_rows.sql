-- The rows of nodes' own part files (hive-partitioned by project/run_id/segment, typed
-- explicitly: inference would read run id "0042" as the number 42).
CREATE OR REPLACE MACRO part_rows(files) AS TABLE
SELECT project, run_id, segment, step, key, value, text
FROM read_parquet(
    files,
    hive_partitioning = true,
    hive_types = {'project': VARCHAR, 'run_id': VARCHAR, 'segment': BIGINT}
);
