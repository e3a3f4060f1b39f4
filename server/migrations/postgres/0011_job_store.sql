-- Each job's store (`bmat store get|put`): set at submission or by its
-- tasks. A secret value is set to NULL when its job ends; the key stays,
-- so that the job's history shows it existed.
CREATE TABLE job_store (
    job    BIGINT  NOT NULL,
    key    TEXT    NOT NULL,
    value  TEXT,
    secret INTEGER NOT NULL,
    PRIMARY KEY (job, key)
);
