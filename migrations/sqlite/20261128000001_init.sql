-- Times are milliseconds since the Unix epoch (INTEGER), so both stores share one representation.
-- Every table holding sub-tenant data carries tenant_id and sub_tenant_id; every query filters by them.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE sub_tenants (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    external_id  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    deleted_at   INTEGER,
    UNIQUE (tenant_id, external_id)
);

-- Ed25519 keys that sign session tokens; the private half is sealed by the vault.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    private_key  BLOB NOT NULL,
    public_key   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    retired_at   INTEGER
);

CREATE TABLE sessions (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    sub_tenant_id  TEXT NOT NULL REFERENCES sub_tenants(id),
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    revoked_at     INTEGER
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
    wrapped_key    BLOB NOT NULL,
    ciphertext     BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    rotated_at     INTEGER
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
    enabled        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    deleted_at     INTEGER
);
CREATE INDEX destinations_scope ON destinations (tenant_id, sub_tenant_id);

CREATE TABLE events (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    sub_tenant_id    TEXT NOT NULL,
    idempotency_key  TEXT,
    type             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    occurred_at      INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    deliveries       INTEGER NOT NULL
);
CREATE UNIQUE INDEX events_idempotency ON events (sub_tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The durable queue. A worker claims due rows by setting lease_owner/lease_until in one UPDATE;
-- a row whose lease ran out is due again, so work of a worker that died is picked up.
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL,
    sub_tenant_id    TEXT NOT NULL,
    event_id         TEXT NOT NULL REFERENCES events(id),
    destination_id   TEXT NOT NULL REFERENCES destinations(id),
    status           TEXT NOT NULL,
    attempt_count    INTEGER NOT NULL DEFAULT 0,
    retry_index      INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    lease_owner      TEXT,
    lease_until      INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE status = 'delivering';
CREATE INDEX deliveries_log ON deliveries (sub_tenant_id, id);

CREATE TABLE attempts (
    delivery_id       TEXT NOT NULL REFERENCES deliveries(id),
    n                 INTEGER NOT NULL,
    started_at        INTEGER NOT NULL,
    duration_ms       INTEGER NOT NULL,
    outcome           TEXT NOT NULL,
    status_code       INTEGER,
    error             TEXT,
    response_excerpt  TEXT,
    PRIMARY KEY (delivery_id, n)
);

CREATE TABLE replays (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    sub_tenant_id  TEXT NOT NULL,
    request        TEXT NOT NULL,
    deliveries     INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    sub_tenant_id  TEXT,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    target         TEXT NOT NULL,
    at             INTEGER NOT NULL
);
CREATE INDEX audit_scope ON audit_log (tenant_id, sub_tenant_id, id);
