-- A reader's stories count as had once their digest is sent, not queued:
-- the edition keeps the time its stories run up to.
ALTER TABLE editions ADD COLUMN stories_until TEXT;
UPDATE editions SET stories_until = created_at;
-- Why an edition is paused (by an admin, or by itself when its failures pass a rate).
ALTER TABLE editions ADD COLUMN state_reason TEXT;

-- Idempotency keys of every admin request that takes one (test sends, run-now).
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    status INTEGER,
    response TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
INSERT INTO idempotency_keys (scope, idempotency_key, status, response, created_at)
    SELECT 'test-send', idempotency_key, status, response, created_at FROM test_sends;
DROP TABLE test_sends;

-- A digest run skips readers with a digest still on its way; this finds those
-- without reading each reader's whole delivery history.
CREATE INDEX deliveries_pending_by_subscriber ON deliveries (subscriber_id) WHERE status IN ('queued', 'sending');
