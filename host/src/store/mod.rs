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
mod tenants;

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use audit::AuditEntry;
pub use credentials::{CredentialRow, NewCredential};
pub use deliveries::{
    AttemptRow, ClaimedDelivery, Completion, DeliveryFilter, DeliveryRow, Outcome, ReplayFilter,
};
pub use destinations::{DestinationPatch, DestinationRow, FanoutTarget, NewDestination};
pub use events::{IngestedEvent, NewEvent};
pub use keys::SealedCredential;
pub use sessions::{SessionCheck, SigningKeyRow};

pub type Db = sqlx::Sqlite;
pub type Tx<'a> = sqlx::Transaction<'a, Db>;

/// The database, split into a pool for reads and a single connection for writes: SQLite has one
/// writer, and queueing writers in the pool is cheaper and fairer than letting them collide on
/// `SQLITE_BUSY`.
#[derive(Clone)]
pub struct Store {
    read: SqlitePool,
    write: SqlitePool,
}

impl Store {
    pub async fn open_sqlite(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let path = data_dir.join("pushrail.db");
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        sqlx::migrate!("../migrations/sqlite")
            .run(&write)
            .await
            .context("running SQLite migrations")?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(Self { read, write })
    }

    pub async fn begin(&self) -> sqlx::Result<Tx<'static>> {
        self.write.begin().await
    }

    pub fn reader(&self) -> &SqlitePool {
        &self.read
    }

    pub fn writer(&self) -> &SqlitePool {
        &self.write
    }
}
