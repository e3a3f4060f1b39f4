-- Why a well could not destroy a resource, as it said the last time:
-- what an operator reads beside a held resource. Gone with the resource.
CREATE TABLE resource_reasons (
    resource BIGINT PRIMARY KEY,
    reason   TEXT   NOT NULL
);
