-- Content review and applied receipts. Durations are bigint nanoseconds.

-- +goose Up

-- How often a version asks to be reviewed (0 for never) and who reviews it.
-- The defaults give versions written before this migration no review.
ALTER TABLE article_versions
    ADD COLUMN review_every_ns bigint NOT NULL DEFAULT 0,
    ADD COLUMN owner           text   NOT NULL DEFAULT '';

-- The highest version of each article that an integration's tool has
-- confirmed it applied. Rows go with their integration through ON DELETE
-- CASCADE, and the version must exist. applied_at is when version was
-- raised to its value, received_at when the newest receipt for the article
-- arrived.
CREATE TABLE receipts (
    integration_id text        NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    article_id     text        NOT NULL,
    version        bigint      NOT NULL,
    applied_at     timestamptz NOT NULL,
    received_at    timestamptz NOT NULL,
    PRIMARY KEY (integration_id, article_id),
    FOREIGN KEY (article_id, version) REFERENCES article_versions (article_id, version)
);

-- +goose Down
DROP TABLE receipts;
ALTER TABLE article_versions
    DROP COLUMN owner,
    DROP COLUMN review_every_ns;
