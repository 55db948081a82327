-- Delivery controls of push integrations: per-integration webhook settings,
-- the pause and disable state, the webhook secret that a rotation replaced,
-- and the start of a change's retries. NULL stands for the zero time.

-- +goose Up

ALTER TABLE integrations
    -- knowledge.DeliverySettings, whose durations are nanoseconds. The empty
    -- object means that every setting takes the hub's default.
    ADD COLUMN delivery              jsonb       NOT NULL DEFAULT '{}',
    -- A knowledge.DeliveryState: active, paused or disabled.
    ADD COLUMN state                 text        NOT NULL DEFAULT 'active',
    ADD COLUMN state_reason          text        NOT NULL DEFAULT '',
    ADD COLUMN state_since           timestamptz,
    -- The secret before the last rotation, which still signs requests until
    -- previous_secret_until. It is empty when there was none.
    ADD COLUMN previous_secret       text        NOT NULL DEFAULT '',
    ADD COLUMN previous_secret_until timestamptz,
    -- The time of the first failed attempt of the change at retry_cursor.
    ADD COLUMN retry_since           timestamptz;

-- QueryDeliveries by article uses deliveries_article from 00003. A second
-- index ordered by id would save a sort but cost every delivery write.

-- +goose Down
ALTER TABLE integrations
    DROP COLUMN retry_since,
    DROP COLUMN previous_secret_until,
    DROP COLUMN previous_secret,
    DROP COLUMN state_since,
    DROP COLUMN state_reason,
    DROP COLUMN state,
    DROP COLUMN delivery;
