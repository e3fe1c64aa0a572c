-- Consent is history: one row per sign-up or import that records it.
CREATE TABLE consents (
    id BLOB PRIMARY KEY NOT NULL,
    subscriber_id BLOB NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    source TEXT NOT NULL
);
CREATE INDEX consents_by_subscriber ON consents (subscriber_id, at);
INSERT INTO consents (id, subscriber_id, at, ip, user_agent, source)
    SELECT randomblob(16), id, consent_at, consent_ip, consent_user_agent, consent_source FROM subscribers;

-- One mailbox, one reader: addresses that differ only in letter case become
-- the one row with the most restrictive state (bounced, unsubscribed,
-- confirmed, pending), known since the earliest of them. Only ASCII is
-- lower-cased, as SubscriberEmail does (it takes no other letters).
CREATE TEMPORARY TABLE merged_readers (dropped_id BLOB PRIMARY KEY NOT NULL, kept_id BLOB NOT NULL);
WITH ranked AS (
    SELECT id, lower(email) AS mailbox,
        ROW_NUMBER() OVER (PARTITION BY lower(email) ORDER BY
            CASE status WHEN 'bounced' THEN 0 WHEN 'unsubscribed' THEN 1 WHEN 'confirmed' THEN 2 ELSE 3 END,
            created_at, id) AS rank
    FROM subscribers
)
INSERT INTO merged_readers (dropped_id, kept_id)
    SELECT dropped.id, kept.id FROM ranked dropped JOIN ranked kept ON kept.mailbox = dropped.mailbox AND kept.rank = 1
    WHERE dropped.rank > 1;

UPDATE subscribers SET created_at = (
        SELECT MIN(s.created_at) FROM subscribers s JOIN merged_readers m ON m.dropped_id = s.id
        WHERE m.kept_id = subscribers.id)
    WHERE id IN (SELECT kept_id FROM merged_readers)
      AND created_at > (SELECT MIN(s.created_at) FROM subscribers s JOIN merged_readers m ON m.dropped_id = s.id
                        WHERE m.kept_id = subscribers.id);

UPDATE consents SET subscriber_id = (SELECT kept_id FROM merged_readers WHERE dropped_id = consents.subscriber_id)
    WHERE subscriber_id IN (SELECT dropped_id FROM merged_readers);

-- A dropped row's delivery moves to the kept one unless that would make two
-- of one edition (the kept row has one, or another dropped row's comes first);
-- those stay for the statistics, without a reader, as after an erasure.
UPDATE deliveries SET subscriber_id = (SELECT kept_id FROM merged_readers WHERE dropped_id = deliveries.subscriber_id)
    WHERE subscriber_id IN (SELECT dropped_id FROM merged_readers)
      AND (edition_id IS NULL OR NOT EXISTS (
          SELECT 1 FROM deliveries other JOIN merged_readers m ON m.dropped_id = deliveries.subscriber_id
          WHERE other.edition_id = deliveries.edition_id
            AND (other.subscriber_id = m.kept_id
                 OR (other.id < deliveries.id
                     AND other.subscriber_id IN (SELECT dropped_id FROM merged_readers WHERE kept_id = m.kept_id)))));

-- What is still to be sent to a dropped row would go to the same mailbox
-- twice, or for an edition the kept row has: it is suppressed, saying why.
UPDATE deliveries SET status = 'suppressed',
    last_error = 'merged into the same reader under another spelling of the address'
    WHERE subscriber_id IN (SELECT dropped_id FROM merged_readers) AND status IN ('queued', 'sending');

DELETE FROM subscribers WHERE id IN (SELECT dropped_id FROM merged_readers);
DROP TABLE merged_readers;
UPDATE subscribers SET email = lower(email) WHERE email <> lower(email);

ALTER TABLE subscribers DROP COLUMN consent_at;
ALTER TABLE subscribers DROP COLUMN consent_ip;
ALTER TABLE subscribers DROP COLUMN consent_user_agent;
ALTER TABLE subscribers DROP COLUMN consent_source;

-- Confirming again emails the preferences link, at most once per resend interval.
ALTER TABLE subscribers ADD COLUMN preferences_link_sent_at TEXT;
