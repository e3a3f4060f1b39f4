-- The inputs that decided something, each with the sequence number of its
-- first event (its events run up to the next input's first). With the
-- event log this makes the history checkable: replaying each input
-- through the core at its time must decide exactly the events that were
-- logged (`aquifer_model::replay`).
CREATE TABLE inputs (
    first_seq BIGINT PRIMARY KEY,
    at_ms     BIGINT NOT NULL,
    body      TEXT   NOT NULL
);
