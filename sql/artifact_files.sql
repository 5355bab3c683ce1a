-- The files of every logged artifact version (content by sha256 under artifacts/_blobs/).
CREATE TABLE IF NOT EXISTS artifact_files (
    record           VARCHAR NOT NULL,     -- the logging record (artifact_usage.path)
    artifact_project VARCHAR NOT NULL,
    name             VARCHAR NOT NULL,
    version          BIGINT NOT NULL,
    file_path        VARCHAR NOT NULL,     -- the file's path inside the artifact
    sha256           VARCHAR,
    size             BIGINT,
    PRIMARY KEY (record, file_path)
);
