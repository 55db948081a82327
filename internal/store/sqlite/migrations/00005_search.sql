-- Full-text search on the analyzer of package fulltext, which both
-- back-ends share. The store now indexes text that it prepares itself:
-- lower case without accents, CJK runs as character pairs and camel-case
-- words also in parts. That text differs from the article text, so
-- article_fts no longer reads the articles through a view: it is
-- contentless, snippets are cut from article_versions, and
-- contentless_delete lets the store remove a row by its rowid alone.

-- +goose Up
DROP TABLE article_fts;
DROP VIEW article_search_content;

CREATE VIRTUAL TABLE article_fts USING fts5 (
    title,
    tags,
    body,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- The number of articles that contain each token, for leaving out of
-- any-term searches the tokens whose BM25 weight is nil.
CREATE VIRTUAL TABLE article_fts_vocab USING fts5vocab (article_fts, 'row');

-- One narrow row per current, non-archived article, with the columns that
-- searches filter, sort, count and show. article_versions stores the body
-- before collection, class, tags and metadata, so reading those columns
-- there walks the body's overflow pages; here a filter or a facet reads a
-- few hundred bytes per article. The store writes this table in the same
-- transaction as article_fts.
CREATE TABLE article_search (
    seq        INTEGER PRIMARY KEY, -- article_versions.seq of the current version
    article_id TEXT    NOT NULL UNIQUE,
    version    INTEGER NOT NULL,
    title      TEXT    NOT NULL,
    collection TEXT    NOT NULL,
    class      TEXT    NOT NULL,
    tags       TEXT    NOT NULL, -- JSON array of strings, as in article_versions
    metadata   TEXT    NOT NULL, -- JSON object of strings, as in article_versions
    status     TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
) STRICT;

-- Listings without search text, newest first, and their keyset pages.
CREATE INDEX article_search_updated ON article_search (updated_at DESC, article_id);

-- The tags and metadata of article_search, one row per tag or key, so that
-- search filters on them read an index rather than parse every article's
-- JSON.
CREATE TABLE article_search_tags (
    seq INTEGER NOT NULL, -- article_search.seq
    tag TEXT    NOT NULL,
    PRIMARY KEY (seq, tag)
) STRICT, WITHOUT ROWID;
CREATE INDEX article_search_tags_tag ON article_search_tags (tag);

CREATE TABLE article_search_metadata (
    seq   INTEGER NOT NULL, -- article_search.seq
    key   TEXT    NOT NULL,
    value TEXT    NOT NULL,
    PRIMARY KEY (seq, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX article_search_metadata_value ON article_search_metadata (key, value);

-- The fulltext.AnalyzerVersion whose text article_fts holds. Open rebuilds
-- the index when it differs, so 0 fills the new tables on the first Open.
CREATE TABLE search_index (
    analyzer INTEGER NOT NULL
) STRICT;
INSERT INTO search_index (analyzer) VALUES (0);

-- +goose Down
DROP TABLE search_index;
DROP TABLE article_fts_vocab;
DROP INDEX article_search_metadata_value;
DROP TABLE article_search_metadata;
DROP INDEX article_search_tags_tag;
DROP TABLE article_search_tags;
DROP INDEX article_search_updated;
DROP TABLE article_search;
DROP TABLE article_fts;

CREATE VIEW article_search_content AS
SELECT v.seq AS seq, v.title AS title, v.tags AS tags, v.body AS body
FROM articles a
JOIN article_versions v ON v.seq = a.current_seq
WHERE a.status <> 'archived';

CREATE VIRTUAL TABLE article_fts USING fts5 (
    title,
    tags,
    body,
    content = 'article_search_content',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO article_fts (article_fts) VALUES ('rebuild');
