CREATE TABLE editions (
    id UUID PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    slot TEXT NOT NULL UNIQUE,
    content TEXT NOT NULL DEFAULT '{}',
    recipients BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL
);

ALTER TABLE deliveries ADD COLUMN edition_id UUID REFERENCES editions (id);
CREATE UNIQUE INDEX deliveries_once_per_edition ON deliveries (edition_id, subscriber_id) WHERE edition_id IS NOT NULL;

ALTER TABLE subscribers ADD COLUMN last_digest_at TIMESTAMPTZ;
CREATE INDEX subscribers_for_digest ON subscribers (status, digest_frequency);

CREATE INDEX stories_by_created ON stories (created_at);
