-- The jobs read model: what the API lists and shows. Kept in the same
-- transaction as the events that change it. The core forgets a job once
-- it retires; this table does not.
CREATE TABLE jobs (
    id           BIGINT  PRIMARY KEY,
    owner        BIGINT  NOT NULL,
    name         TEXT    NOT NULL,
    spec         TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    outcome      TEXT,
    submitted_ms BIGINT  NOT NULL,
    updated_seq  BIGINT  NOT NULL
);
CREATE INDEX jobs_owner_state ON jobs (owner, state);
