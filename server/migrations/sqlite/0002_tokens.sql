-- API tokens. A token is "aq_<id>_<secret>": the id finds the row, the
-- secret is stored only as its SHA-256 and compared in constant time.
CREATE TABLE tokens (
    id          TEXT    PRIMARY KEY,
    secret_hash BLOB    NOT NULL,
    kind        TEXT    NOT NULL,
    subject     INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tokens_subject ON tokens (kind, subject);
