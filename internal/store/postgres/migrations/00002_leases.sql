-- Dispatch leases: which hub process pushes an integration's changes, and
-- until when by the database clock, so nodes whose clocks differ agree.

-- +goose Up

-- One row per leased integration. The row goes with its integration through
-- ON DELETE CASCADE.
CREATE TABLE leases (
    integration_id text        PRIMARY KEY REFERENCES integrations (id) ON DELETE CASCADE,
    node           text        NOT NULL,
    expires_at     timestamptz NOT NULL
);

-- +goose Down
DROP TABLE leases;
