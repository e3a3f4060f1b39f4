-- Users: who owns jobs, and the privileges they hold.
CREATE TABLE users (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    privileges TEXT    NOT NULL,
    created_ms BIGINT  NOT NULL
);
