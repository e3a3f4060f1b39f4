-- The event log: every decision the core made, in order. The state is
-- rebuilt from it (and from the latest snapshot) on start.
CREATE TABLE events (
    seq   INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    body  TEXT    NOT NULL
);

-- Snapshots of the core state at a sequence number, so that start-up
-- replays only the events after the latest one.
CREATE TABLE snapshots (
    seq  INTEGER PRIMARY KEY,
    body TEXT    NOT NULL
);
