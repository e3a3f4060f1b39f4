-- The files a submitter uploads for a job after submitting it: one row
-- per input begun, numbered by its place in the job file's `inputs`.
-- The bytes live in the object store; `complete` becomes 1 once they are
-- whole there (size and SHA-256 checked); the job acquires nothing until
-- every input it names is.
CREATE TABLE job_inputs (
    job        BIGINT  NOT NULL,
    n          BIGINT  NOT NULL,
    path       TEXT    NOT NULL,
    size       BIGINT  NOT NULL,
    sha256     TEXT,
    complete   INTEGER NOT NULL,
    created_ms BIGINT  NOT NULL,
    PRIMARY KEY (job, n),
    UNIQUE (job, path)
);
