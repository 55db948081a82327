-- Freshness samples of the SLO recorder. Times are timestamptz and
-- staleness_ns is bigint nanoseconds, as in 00001_initial.sql.

-- +goose Up

-- One row per integration and time bucket: every node of a multi-node hub
-- samples every integration, and a second sample of the same bucket merges
-- into the row and keeps the worst. Rows go with their integration through
-- ON DELETE CASCADE.
CREATE TABLE staleness_samples (
    integration_id text        NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    at             timestamptz NOT NULL,
    staleness_ns   bigint      NOT NULL,
    -- True when every merged sample was within the window.
    within_window  boolean     NOT NULL,
    PRIMARY KEY (integration_id, at)
);

-- PruneStaleness deletes by time across integrations.
CREATE INDEX staleness_samples_at ON staleness_samples (at);

-- +goose Down
DROP TABLE staleness_samples;
