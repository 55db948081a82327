-- Full-text search on the analyzer of package fulltext, which both
-- back-ends share: the store computes each search document from text that
-- it prepares itself (lower case without accents, CJK runs as character
-- pairs, camel-case words also in parts), so accent folding needs no
-- unaccent extension. The documents written before this migration were
-- made from the raw text, and Open rebuilds them.

-- +goose Up

-- The fulltext.AnalyzerVersion that built the search documents. Open
-- rebuilds the documents when it differs, so 0 rebuilds them on the first
-- Open after this migration.
CREATE TABLE search_index (
    analyzer integer NOT NULL
);
INSERT INTO search_index (analyzer) VALUES (0);

-- +goose Down
DROP TABLE search_index;
