-- Freshness samples of the SLO recorder. Unlike the TEXT times of the other
-- tables, at_us is INTEGER Unix microseconds, so that StalenessSeries groups
-- samples into steps by integer division. staleness_ns is nanoseconds.

-- +goose Up

-- One row per integration and time bucket: a second sample of the same
-- bucket, from another node or a late tick, merges into the row and keeps
-- the worst. Rows go with their integration through ON DELETE CASCADE.
CREATE TABLE staleness_samples (
    integration_id TEXT    NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    at_us          INTEGER NOT NULL,
    staleness_ns   INTEGER NOT NULL,
    within_window  INTEGER NOT NULL, -- 1 when every merged sample was within the window
    PRIMARY KEY (integration_id, at_us)
) STRICT, WITHOUT ROWID;

-- PruneStaleness deletes by time across integrations.
CREATE INDEX staleness_samples_at ON staleness_samples (at_us);

-- +goose Down
DROP TABLE staleness_samples;
