-- Indexes for OldestFailedChange, which freshness runs on every reading of
-- a push or hybrid integration: the failed deliveries of one integration,
-- and for each of them the later deliveries and changes of its article.

-- +goose Up

-- Only final failures, so the index stays small while deliveries succeed.
CREATE INDEX deliveries_failed ON deliveries (integration_id, cursor) WHERE outcome = 'failed';
CREATE INDEX deliveries_article ON deliveries (integration_id, article_id, cursor);
CREATE INDEX changes_article ON changes (article_id, cursor);

-- +goose Down
DROP INDEX changes_article;
DROP INDEX deliveries_article;
DROP INDEX deliveries_failed;
