-- Endpoint health: since when every batch of the destination has failed (NULL while it
-- delivers), and why Pushrail disabled it, if it did (NULL when enabled, or disabled by hand).
ALTER TABLE destinations ADD COLUMN failing_since INTEGER;
ALTER TABLE destinations ADD COLUMN disabled_reason TEXT;
