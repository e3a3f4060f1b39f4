-- Each job's watch stream: its events as the core decided them (and,
-- from agents, its task output), numbered per job from 1 so that a
-- watcher resumes after the last number it saw. Written only by the
-- driver, in the transaction of the events, so numbers have no gaps.
CREATE TABLE job_events (
    job   BIGINT NOT NULL,
    n     BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    body  TEXT   NOT NULL,
    PRIMARY KEY (job, n)
);
