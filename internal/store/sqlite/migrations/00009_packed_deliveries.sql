-- A batched request that delivered several events is one packed row:
-- cursor is its last event's, first_cursor its first event's, and events
-- a JSON array of store.PackedEvent. Other rows leave both NULL. Packed
-- rows of one integration cover disjoint cursor ranges, so the last row
-- that starts at or before a cursor is the only one that may hold it.

-- +goose Up
ALTER TABLE deliveries ADD COLUMN first_cursor INTEGER;
ALTER TABLE deliveries ADD COLUMN events TEXT;
CREATE INDEX deliveries_packed ON deliveries (integration_id, first_cursor) WHERE events IS NOT NULL;

-- +goose Down
DROP INDEX deliveries_packed;
ALTER TABLE deliveries DROP COLUMN events;
ALTER TABLE deliveries DROP COLUMN first_cursor;
