-- Content review and applied receipts. Times follow 00001_initial.sql: TEXT
-- in UTC with nine fractional digits. Durations are INTEGER nanoseconds.

-- +goose Up

-- How often a version asks to be reviewed (0 for never) and who reviews it.
-- The defaults give versions written before this migration no review.
ALTER TABLE article_versions ADD COLUMN review_every_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE article_versions ADD COLUMN owner TEXT NOT NULL DEFAULT '';

-- The highest version of each article that an integration's tool has
-- confirmed it applied. Rows go with their integration through ON DELETE
-- CASCADE, and the version must exist. applied_at is when version was
-- raised to its value, received_at when the newest receipt for the article
-- arrived.
CREATE TABLE receipts (
    integration_id TEXT    NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    article_id     TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    applied_at     TEXT    NOT NULL,
    received_at    TEXT    NOT NULL,
    PRIMARY KEY (integration_id, article_id),
    FOREIGN KEY (article_id, version) REFERENCES article_versions (article_id, version)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE receipts;
ALTER TABLE article_versions DROP COLUMN owner;
ALTER TABLE article_versions DROP COLUMN review_every_ns;
