-- The PostgreSQL twin of migrations/sqlite: same tables, same columns, same meaning.
-- Times are milliseconds since the Unix epoch (BIGINT); flags are 0/1 integers, as in SQLite.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE sub_tenants (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    external_id  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    deleted_at   BIGINT,
    UNIQUE (tenant_id, external_id)
);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    private_key  BYTEA NOT NULL,
    public_key   BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    retired_at   BIGINT
);

CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    sub_tenant_id  TEXT NOT NULL REFERENCES sub_tenants(id),
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT
);
CREATE INDEX sessions_sub_tenant ON sessions (sub_tenant_id, revoked_at);

CREATE TABLE credentials (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    sub_tenant_id  TEXT NOT NULL REFERENCES sub_tenants(id),
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    master_kid     TEXT NOT NULL,
    wrapped_key    BYTEA NOT NULL,
    ciphertext     BYTEA NOT NULL,
    created_at     BIGINT NOT NULL,
    rotated_at     BIGINT
);
CREATE INDEX credentials_scope ON credentials (tenant_id, sub_tenant_id);

CREATE TABLE destinations (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    sub_tenant_id  TEXT NOT NULL REFERENCES sub_tenants(id),
    type           TEXT NOT NULL,
    name           TEXT NOT NULL,
    config         TEXT NOT NULL,
    credential_id  TEXT REFERENCES credentials(id),
    event_types    TEXT NOT NULL,
    enabled        BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    deleted_at     BIGINT
);
CREATE INDEX destinations_scope ON destinations (tenant_id, sub_tenant_id);

CREATE TABLE events (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    sub_tenant_id    TEXT NOT NULL,
    idempotency_key  TEXT,
    type             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    occurred_at      BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    deliveries       BIGINT NOT NULL
);
CREATE UNIQUE INDEX events_idempotency ON events (sub_tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    sub_tenant_id    TEXT NOT NULL,
    event_id         TEXT NOT NULL REFERENCES events(id),
    destination_id   TEXT NOT NULL REFERENCES destinations(id),
    status           TEXT NOT NULL,
    attempt_count    BIGINT NOT NULL DEFAULT 0,
    retry_index      BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    lease_owner      TEXT,
    lease_until      BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE status = 'delivering';
CREATE INDEX deliveries_log ON deliveries (sub_tenant_id, id);

CREATE TABLE attempts (
    delivery_id       TEXT NOT NULL REFERENCES deliveries(id),
    n                 BIGINT NOT NULL,
    started_at        BIGINT NOT NULL,
    duration_ms       BIGINT NOT NULL,
    outcome           TEXT NOT NULL,
    status_code       BIGINT,
    error             TEXT,
    response_excerpt  TEXT,
    PRIMARY KEY (delivery_id, n)
);

CREATE TABLE replays (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    sub_tenant_id  TEXT NOT NULL,
    request        TEXT NOT NULL,
    deliveries     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    sub_tenant_id  TEXT,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    target         TEXT NOT NULL,
    at             BIGINT NOT NULL
);
CREATE INDEX audit_scope ON audit_log (tenant_id, sub_tenant_id, id);

-- Per-tenant request counts per one-second window, shared by every host.
CREATE TABLE rate_windows (
    tenant_id  TEXT NOT NULL,
    window_s   BIGINT NOT NULL,
    count      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, window_s)
);
