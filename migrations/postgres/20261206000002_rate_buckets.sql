-- Token buckets shared by every host: one per tenant's vendor API and one per sub-tenant's
-- embed API. They replace the per-second counters, which admitted a whole second's burst in
-- every window (twice the configured rate).
DROP TABLE rate_windows;
CREATE TABLE rate_buckets (
    key         TEXT PRIMARY KEY,
    tokens      DOUBLE PRECISION NOT NULL,
    updated_ms  BIGINT NOT NULL,
    admitted    BOOLEAN NOT NULL
);
