-- The tags a job was submitted with (`tags = { repo = "..." }`), one row
-- each, so that a listing filtered by a tag finds its jobs by index.
-- Written in the same transaction as the job's row.
CREATE TABLE job_tags (
    job   BIGINT NOT NULL,
    key   TEXT   NOT NULL,
    value TEXT   NOT NULL,
    PRIMARY KEY (job, key)
);
CREATE INDEX job_tags_key_value ON job_tags (key, value, job);
