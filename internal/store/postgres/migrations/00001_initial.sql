-- The initial schema. Every object is created unqualified, so it lands in the
-- store's schema, the first entry of the connections' search_path. Times are
-- timestamptz (microsecond precision); NULL stands for the zero time.
-- Durations are bigint nanoseconds.

-- +goose Up

-- Every version of every article, immutable once written.
CREATE TABLE article_versions (
    seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    article_id text        NOT NULL,
    version    bigint      NOT NULL,
    title      text        NOT NULL,
    body       text        NOT NULL,
    collection text        NOT NULL,
    class      text        NOT NULL,
    tags       text[]      NOT NULL, -- normalized: lower-case, sorted, unique
    metadata   jsonb       NOT NULL, -- object of strings
    status     text        NOT NULL,
    hash       text        NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (article_id, version)
);

-- The current version of each article. document is the full-text search
-- vector of that version (title weight A, tags B, body C, configuration
-- 'simple'), written by the store in the same transaction; it is NULL while
-- the article is archived, so archived articles are never matched.
CREATE TABLE articles (
    id          text     PRIMARY KEY,
    current_seq bigint   NOT NULL UNIQUE REFERENCES article_versions (seq),
    version     bigint   NOT NULL,
    status      text     NOT NULL,
    hash        text     NOT NULL,
    document    tsvector
);

-- fastupdate is off because the hub reads far more than it writes: with it
-- on, inserts go to a pending list of up to gin_pending_list_limit (4 MB by
-- default) that every search scans in full until VACUUM merges it.
CREATE INDEX articles_document ON articles USING gin (document) WITH (fastupdate = off);

-- The change log. The cursor comes from an identity sequence with CACHE 1
-- (the default): a session-local cache of several values would hand out
-- cursors out of allocation order, which the store's ordering rule forbids.
CREATE TABLE changes (
    cursor     bigint      GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
    article_id text        NOT NULL,
    version    bigint      NOT NULL,
    type       text        NOT NULL,
    time       timestamptz NOT NULL,
    FOREIGN KEY (article_id, version) REFERENCES article_versions (article_id, version)
);

CREATE TABLE integrations (
    id               text        PRIMARY KEY,
    name             text        NOT NULL,
    pattern          text        NOT NULL,
    freshness_ns     bigint      NOT NULL,
    poll_interval_ns bigint      NOT NULL,
    lookups          boolean     NOT NULL,
    accept_risk      boolean     NOT NULL,
    scope            jsonb       NOT NULL, -- knowledge.Scope
    reasons          jsonb       NOT NULL, -- array of strings, or null
    webhook_url      text        NOT NULL,
    webhook_secret   text        NOT NULL,
    token_hash       text        NOT NULL, -- empty when the integration has no pull token
    created_at       timestamptz,
    push_cursor      bigint      NOT NULL DEFAULT 0,
    pull_cursor      bigint      NOT NULL DEFAULT 0,
    pull_seen        boolean     NOT NULL DEFAULT false,
    last_pull_at     timestamptz,
    retry_cursor     bigint      NOT NULL DEFAULT 0,
    retry_attempt    integer     NOT NULL DEFAULT 0,
    retry_due_at     timestamptz,
    last_error       text        NOT NULL DEFAULT '',
    last_error_at    timestamptz,
    last_success_at  timestamptz
);

CREATE UNIQUE INDEX integrations_token_hash ON integrations (token_hash) WHERE token_hash <> '';

-- One row per delivery attempt.
CREATE TABLE deliveries (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    integration_id text        NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    event_id       text        NOT NULL,
    cursor         bigint      NOT NULL,
    article_id     text        NOT NULL,
    version        bigint      NOT NULL,
    type           text        NOT NULL,
    attempt        integer     NOT NULL,
    status_code    integer     NOT NULL,
    error          text        NOT NULL,
    latency_ns     bigint      NOT NULL,
    started_at     timestamptz,
    outcome        text        NOT NULL
);

CREATE INDEX deliveries_integration ON deliveries (integration_id, id);

-- +goose Down
DROP TABLE deliveries;
DROP TABLE integrations;
DROP TABLE changes;
DROP TABLE articles;
DROP TABLE article_versions;
