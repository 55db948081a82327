-- Dispatch leases: which hub process pushes an integration's changes, and
-- until when. Times follow 00001_initial.sql: TEXT in UTC with nine
-- fractional digits, so they compare as strings.

-- +goose Up

-- One row per leased integration. The row goes with its integration through
-- ON DELETE CASCADE, which the store's connections enforce with
-- foreign_keys on.
CREATE TABLE leases (
    integration_id TEXT PRIMARY KEY REFERENCES integrations (id) ON DELETE CASCADE,
    node           TEXT NOT NULL,
    expires_at     TEXT NOT NULL
) STRICT;

-- +goose Down
DROP TABLE leases;
