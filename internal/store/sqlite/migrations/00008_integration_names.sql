-- Integration names are handles in scripts and in plan files, so the store
-- keeps them unique; two creates racing for one name cannot both succeed.

-- +goose Up
CREATE UNIQUE INDEX integrations_name ON integrations (name);

-- +goose Down
DROP INDEX integrations_name;
