-- An admin can pause, resume or cancel an edition while it is being sent.
ALTER TABLE editions ADD COLUMN state TEXT NOT NULL DEFAULT 'sending' CHECK (state IN ('sending', 'paused', 'cancelled'));
-- The dashboard lists the latest failures and retries with their error.
CREATE INDEX deliveries_with_errors ON deliveries (updated_at) WHERE last_error IS NOT NULL;
