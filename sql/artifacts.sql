-- One row per artifact version, with the run that logged it and that run's step then: a fork
-- of that run at or after the step starts from this checkpoint.
CREATE OR REPLACE VIEW artifacts AS
SELECT artifact_project AS project, name, version, 'v' || version AS version_name, type, digest, size,
       run_id, segment, step, used_at AS created_at
FROM artifact_usage
WHERE direction = 'output'
  AND NOT EXISTS (  -- deleted since (Lake.delete_artifact)
    SELECT 1 FROM artifact_usage AS d
    WHERE d.direction = 'deleted' AND d.artifact_project = artifact_usage.artifact_project
      AND d.name = artifact_usage.name AND d.version = artifact_usage.version
  )
QUALIFY row_number() OVER (PARTITION BY artifact_project, name, version ORDER BY used_at, path) = 1;
