-- API tokens. A token is "aq_<id>_<secret>": the id finds the row, the
-- secret is stored only as its SHA-256 and compared in constant time.
CREATE TABLE tokens (
    id          TEXT    PRIMARY KEY,
    secret_hash BYTEA   NOT NULL,
    kind        TEXT    NOT NULL,
    subject     BIGINT  NOT NULL,
    created_ms  BIGINT  NOT NULL,
    revoked     BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX tokens_subject ON tokens (kind, subject);
