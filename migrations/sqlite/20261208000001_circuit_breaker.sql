-- Circuit breaking: how many batches in a row delivered nothing, and, while the circuit is open,
-- when the next probe may be claimed (NULL: closed). A claimed probe moves it to the end of its
-- lease, so only one probe is out at a time.
ALTER TABLE destinations ADD COLUMN failed_batches INTEGER NOT NULL DEFAULT 0;
ALTER TABLE destinations ADD COLUMN circuit_until INTEGER;
-- Every claim reads the open circuits: few rows, found by this index.
CREATE INDEX destinations_open_circuits ON destinations (circuit_until) WHERE circuit_until IS NOT NULL;
