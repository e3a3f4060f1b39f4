-- The names of wells and factories, and the ids the core knows them by.
-- A row is written before the core registers the id, so an id is never
-- handed out twice; a row whose registration did not happen is reused
-- when its name is registered again.
CREATE TABLE wells (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT   NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL
);
CREATE TABLE factories (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT   NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL
);
