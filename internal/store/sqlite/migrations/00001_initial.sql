-- The initial schema. Times are TEXT in UTC with nine fractional digits
-- (2006-01-02T15:04:05.000000000Z), so they sort as strings, and NULL is the
-- zero time. Durations are INTEGER nanoseconds.

-- +goose Up

-- Every version of every article, immutable once written.
CREATE TABLE article_versions (
    seq        INTEGER PRIMARY KEY,
    article_id TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    collection TEXT    NOT NULL,
    class      TEXT    NOT NULL,
    tags       TEXT    NOT NULL, -- JSON array of strings
    metadata   TEXT    NOT NULL, -- JSON object of strings
    status     TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    UNIQUE (article_id, version)
) STRICT;

-- The current version of each article.
CREATE TABLE articles (
    id          TEXT    PRIMARY KEY,
    current_seq INTEGER NOT NULL UNIQUE REFERENCES article_versions (seq),
    version     INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    hash        TEXT    NOT NULL
) STRICT;

-- The change log. AUTOINCREMENT keeps a cursor from being reused after the
-- newest row is deleted.
CREATE TABLE changes (
    cursor     INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    type       TEXT    NOT NULL,
    time       TEXT    NOT NULL,
    FOREIGN KEY (article_id, version) REFERENCES article_versions (article_id, version)
) STRICT;

-- The text that article_fts indexes: current versions that are not archived.
-- The FTS rowid is article_versions.seq.
CREATE VIEW article_search_content AS
SELECT v.seq AS seq, v.title AS title, v.tags AS tags, v.body AS body
FROM articles a
JOIN article_versions v ON v.seq = a.current_seq
WHERE a.status <> 'archived';

-- An external-content index: the store inserts and deletes its rows in the
-- same transaction that changes articles, so the view and the index agree.
CREATE VIRTUAL TABLE article_fts USING fts5 (
    title,
    tags,
    body,
    content = 'article_search_content',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TABLE integrations (
    id               TEXT    PRIMARY KEY,
    name             TEXT    NOT NULL,
    pattern          TEXT    NOT NULL,
    freshness_ns     INTEGER NOT NULL,
    poll_interval_ns INTEGER NOT NULL,
    lookups          INTEGER NOT NULL,
    accept_risk      INTEGER NOT NULL,
    scope            TEXT    NOT NULL, -- JSON of knowledge.Scope
    reasons          TEXT    NOT NULL, -- JSON array of strings
    webhook_url      TEXT    NOT NULL,
    webhook_secret   TEXT    NOT NULL,
    token_hash       TEXT    NOT NULL, -- empty when the integration has no pull token
    created_at       TEXT,
    push_cursor      INTEGER NOT NULL DEFAULT 0,
    pull_cursor      INTEGER NOT NULL DEFAULT 0,
    pull_seen        INTEGER NOT NULL DEFAULT 0,
    last_pull_at     TEXT,
    retry_cursor     INTEGER NOT NULL DEFAULT 0,
    retry_attempt    INTEGER NOT NULL DEFAULT 0,
    retry_due_at     TEXT,
    last_error       TEXT    NOT NULL DEFAULT '',
    last_error_at    TEXT,
    last_success_at  TEXT
) STRICT;

CREATE UNIQUE INDEX integrations_token_hash ON integrations (token_hash) WHERE token_hash <> '';

-- One row per delivery attempt.
CREATE TABLE deliveries (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id TEXT    NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    event_id       TEXT    NOT NULL,
    cursor         INTEGER NOT NULL,
    article_id     TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    type           TEXT    NOT NULL,
    attempt        INTEGER NOT NULL,
    status_code    INTEGER NOT NULL,
    error          TEXT    NOT NULL,
    latency_ns     INTEGER NOT NULL,
    started_at     TEXT,
    outcome        TEXT    NOT NULL
) STRICT;

CREATE INDEX deliveries_integration ON deliveries (integration_id, id);

-- +goose Down
DROP INDEX deliveries_integration;
DROP TABLE deliveries;
DROP INDEX integrations_token_hash;
DROP TABLE integrations;
DROP TABLE article_fts;
DROP VIEW article_search_content;
DROP TABLE changes;
DROP TABLE articles;
DROP TABLE article_versions;
