-- An edition whose deliveries have all ended keeps its final counts, so that
-- listing editions does not count every delivery of every edition again.
ALTER TABLE editions ADD COLUMN settled_sent INTEGER;
ALTER TABLE editions ADD COLUMN settled_failed INTEGER;
ALTER TABLE editions ADD COLUMN settled_suppressed INTEGER;
