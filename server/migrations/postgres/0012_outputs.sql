-- What jobs leave behind: one row per output, numbered per job from 1.
-- The bytes live in the object store; `complete` becomes 1 once they are
-- whole there (size and SHA-256 checked), and only then is it listed.
CREATE TABLE outputs (
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
