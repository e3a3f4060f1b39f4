-- Users: who owns jobs, and the privileges they hold.
CREATE TABLE users (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    privileges TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
);
