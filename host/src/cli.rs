//! The `pushrail` command line.

use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::api::{self, AppState, RateLimits, Shared};
use crate::auth::{generate_api_key, hash_api_key, SessionSigner};
use crate::config::{ServeArgs, StoreArgs};
use crate::engine::{Engine, EngineSettings};
use crate::plugins::{EgressPolicy, NetLimits, PluginHost, SandboxLimits};
use crate::store::Store;
use crate::vault::Vault;

#[derive(Debug, Parser)]
#[command(
    name = "pushrail",
    version,
    about = "Event delivery to your customers' destinations"
)]
pub struct Cli {
    #[command(flatten)]
    store: StoreArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the API and the delivery engine.
    Serve(Box<ServeArgs>),
    /// Manages tenants (vendors).
    #[command(subcommand)]
    Tenant(TenantCommand),
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Creates a tenant and prints its API key, once.
    Create {
        #[arg(long)]
        name: String,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    init_tracing();
    match cli.command {
        Command::Serve(args) => serve(&cli.store, *args).await,
        Command::Tenant(TenantCommand::Create { name }) => {
            let store = open_store(&cli.store).await?;
            let api_key = generate_api_key();
            let tenant_id = store.create_tenant(&name, &hash_api_key(&api_key)).await?;
            println!(
                "{}",
                serde_json::json!({ "tenant_id": tenant_id, "api_key": api_key })
            );
            Ok(())
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PUSHRAIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn open_store(args: &StoreArgs) -> anyhow::Result<Store> {
    if args.database_url.is_some() {
        anyhow::bail!("PostgreSQL is not supported by this build yet; unset PUSHRAIL_DATABASE_URL to use the embedded SQLite store");
    }
    Store::open_sqlite(&args.data_dir).await
}

async fn serve(store_args: &StoreArgs, args: ServeArgs) -> anyhow::Result<()> {
    let store = open_store(store_args).await?;
    let vault = Arc::new(Vault::from_env(
        &store_args.data_dir,
        store_args.database_url.is_none(),
    )?);
    let sessions = SessionSigner::load(store.clone(), vault.clone()).await?;

    let limits = SandboxLimits {
        memory_bytes: args.plugin_memory_mib * 1024 * 1024,
        timeout: args.plugin_timeout,
        instances: (args.concurrency as u32).saturating_add(64),
    };
    let mut plugins = PluginHost::new(
        EgressPolicy::new(args.allow_egress.clone()),
        NetLimits::default(),
        limits,
    )?;
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| store_args.data_dir.join("plugin-cache"));
    plugins.load_dir(&args.plugins_dir, &cache_dir).await?;
    let plugins = Arc::new(plugins);

    let engine = Engine::new(
        store.clone(),
        plugins.clone(),
        vault.clone(),
        EngineSettings {
            retry: args.retry_schedule.clone(),
            batch_size: args.batch_size.max(1),
            linger: args.batch_linger,
            concurrency: args.concurrency.max(1),
            lease: args.lease,
            poll_interval: args.poll_interval,
        },
    );
    engine.start();

    let state = AppState::new(Shared {
        store,
        vault,
        sessions,
        plugins,
        engine,
        limits: RateLimits::new(args.rate_limit, args.rate_limit.saturating_mul(2)),
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, "pushrail is serving");
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
