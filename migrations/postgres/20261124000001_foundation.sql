CREATE TABLE subscribers (
    id UUID PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed', 'bounced')),
    tickers TEXT NOT NULL DEFAULT '',
    alert_threshold_pct DOUBLE PRECISION NOT NULL DEFAULT 5,
    digest_frequency TEXT NOT NULL DEFAULT 'daily' CHECK (digest_frequency IN ('daily', 'weekly', 'never')),
    alerts_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    token_nonce TEXT NOT NULL,
    consent_at TIMESTAMPTZ NOT NULL,
    consent_ip TEXT,
    consent_user_agent TEXT,
    consent_source TEXT NOT NULL,
    confirmation_sent_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    confirmed_at TIMESTAMPTZ,
    unsubscribed_at TIMESTAMPTZ
);
CREATE INDEX subscribers_by_status ON subscribers (status);

CREATE TABLE deliveries (
    id UUID PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    subscriber_id UUID REFERENCES subscribers (id) ON DELETE SET NULL,
    recipient TEXT NOT NULL,
    payload TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'suppressed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claim_id UUID,
    last_error TEXT,
    message_id TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('queued', 'sending');
CREATE INDEX deliveries_by_claim ON deliveries (claim_id) WHERE claim_id IS NOT NULL;
CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id);

CREATE TABLE app_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
