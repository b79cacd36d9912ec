//! Persistence. SQL is written once with `$n` placeholders in ascending order of first use, which
//! both SQLite and PostgreSQL accept.
//!
//! Every function that reads or writes sub-tenant data takes a [`Scope`](crate::scope::Scope)
//! and filters by its tenant and sub-tenant ids; there is no unscoped variant to call by mistake.
//! The delivery engine's queue functions work across sub-tenants by design, and hand back rows
//! that carry their own scope.

mod audit;
mod credentials;
mod deliveries;
mod destinations;
mod events;
mod keys;
mod sessions;
mod sql;
mod tenants;

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::Executor as _;

pub use audit::{ActionFilter, AuditEntry, AuditFilter};
pub use credentials::{CredentialRow, NewCredential};
pub use deliveries::{
    AttemptRow, ClaimShare, ClaimedDelivery, Completion, DeliveryFilter, DeliveryRow, OpenCircuit,
    Outcome, ReplayFilter,
};
pub use destinations::{
    BatchFailed, DestinationPatch, DestinationRow, FanoutTarget, NewDestination,
};
pub use events::{IngestedEvent, Matcher, NewEvent};
pub use keys::SealedCredential;
pub use sessions::{SessionCheck, SigningKeyRow};

pub type Db = sqlx::Any;
pub type Tx<'a> = sqlx::Transaction<'a, Db>;

/// Which database is behind the store; the few statements that differ branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database. On SQLite, a pool for reads and a single connection for writes: SQLite has one
/// writer, and queueing writers in the pool is cheaper and fairer than letting them collide on
/// `SQLITE_BUSY`. On PostgreSQL, one pool serves both.
#[derive(Clone)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
}

/// The migrations of each store, built into the binary.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

impl Store {
    pub async fn open(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        match database_url {
            Some(url) => Self::open_postgres(url).await,
            None => Self::open_sqlite(data_dir).await,
        }
    }

    async fn open_sqlite(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let path = data_dir.join("pushrail.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = |max: u32| {
            AnyPoolOptions::new()
                .max_connections(max)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                        )
                        .await?;
                        Ok(())
                    })
                })
        };
        let write = pool(1)
            .connect(&url)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        SQLITE_MIGRATIONS
            .run(&write)
            .await
            .context("running SQLite migrations")?;
        let read = pool(8).connect(&url).await?;
        Ok(Self {
            read,
            write,
            backend: Backend::Sqlite,
        })
    }

    async fn open_postgres(url: &str) -> anyhow::Result<Self> {
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .context("connecting to PostgreSQL")?;
        POSTGRES_MIGRATIONS
            .run(&pool)
            .await
            .context("running PostgreSQL migrations")?;
        Ok(Self {
            read: pool.clone(),
            write: pool,
            backend: Backend::Postgres,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the store answers and holds every migration this build knows (for `/readyz`);
    /// the reason when not.
    pub async fn readiness(&self) -> Result<(), String> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> = tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&self.read),
        )
        .await
        .map_err(|_| "the store did not answer within 2 s".to_owned())?
        .map_err(|e| format!("the store is not reachable: {e}"))?;
        match applied {
            Some(applied) if applied >= known => Ok(()),
            applied => Err(format!(
                "the store's migrations are behind this build (applied {}, known {known})",
                applied.map_or("none".to_owned(), |a| a.to_string())
            )),
        }
    }

    pub async fn begin(&self) -> sqlx::Result<Tx<'static>> {
        self.write.begin().await
    }
}
