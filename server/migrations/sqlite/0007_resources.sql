-- What wells reported for ready resources: metadata for the job's owner,
-- secrets for the job while it runs. Secrets are deleted (set NULL) when
-- the resource is released; the row goes when it is destroyed.
CREATE TABLE resource_data (
    resource BIGINT PRIMARY KEY,
    job      BIGINT NOT NULL,
    metadata TEXT   NOT NULL,
    secrets  TEXT
);
CREATE INDEX resource_data_job ON resource_data (job);

-- Why a job failed, in words: a well's reason, or the agent's.
ALTER TABLE jobs ADD COLUMN reason TEXT;
