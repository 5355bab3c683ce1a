-- The rows of pack files (run_id and segment are columns; the project is the partition).
CREATE OR REPLACE MACRO pack_rows(files) AS TABLE
SELECT project, run_id, segment, step, key, value, text
FROM read_parquet(files, hive_partitioning = true, hive_types = {'project': VARCHAR});
