-- Delivery controls of push integrations: per-integration webhook settings,
-- the pause and disable state, the webhook secret that a rotation replaced,
-- and the start of a change's retries. Times follow 00001_initial.sql: TEXT
-- in UTC with nine fractional digits, and NULL is the zero time.

-- +goose Up

-- JSON of knowledge.DeliverySettings, whose durations are nanoseconds. The
-- empty object means that every setting takes the hub's default.
ALTER TABLE integrations ADD COLUMN delivery TEXT NOT NULL DEFAULT '{}';
-- A knowledge.DeliveryState: active, paused or disabled.
ALTER TABLE integrations ADD COLUMN state TEXT NOT NULL DEFAULT 'active';
ALTER TABLE integrations ADD COLUMN state_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE integrations ADD COLUMN state_since TEXT;
-- The secret before the last rotation, which still signs requests until
-- previous_secret_until. It is empty when there was none.
ALTER TABLE integrations ADD COLUMN previous_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE integrations ADD COLUMN previous_secret_until TEXT;
-- The time of the first failed attempt of the change at retry_cursor.
ALTER TABLE integrations ADD COLUMN retry_since TEXT;

-- QueryDeliveries by article uses deliveries_article from 00003. A second
-- index ordered by id would save a sort but cost every delivery write.

-- +goose Down
ALTER TABLE integrations DROP COLUMN retry_since;
ALTER TABLE integrations DROP COLUMN previous_secret_until;
ALTER TABLE integrations DROP COLUMN previous_secret;
ALTER TABLE integrations DROP COLUMN state_since;
ALTER TABLE integrations DROP COLUMN state_reason;
ALTER TABLE integrations DROP COLUMN state;
ALTER TABLE integrations DROP COLUMN delivery;
