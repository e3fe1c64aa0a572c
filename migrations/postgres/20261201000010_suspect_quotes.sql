-- A quote that moved beyond the sanity bound (QUOTE_MAX_MOVE_PERCENT) is
-- kept and shown to the admin, but never alerted on or mailed.
ALTER TABLE latest_quotes ADD COLUMN suspect BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE quote_history ADD COLUMN suspect BOOLEAN NOT NULL DEFAULT FALSE;
