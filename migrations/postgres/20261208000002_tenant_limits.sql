-- Per-tenant rate limits, in requests per second (the burst is twice the rate): the vendor API's
-- for the tenant, and the embed API's for each of its sub-tenants. NULL: the host's --rate-limit.
ALTER TABLE tenants ADD COLUMN rate_limit BIGINT;
ALTER TABLE tenants ADD COLUMN embed_rate_limit BIGINT;
