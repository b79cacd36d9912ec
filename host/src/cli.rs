//! The `pushrail` command line.

use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::api::{self, AppState, RateLimits, Shared};
use crate::auth::{generate_api_key, hash_api_key, SessionSigner};
use crate::aws_roles::AwsRoles;
use crate::config::{ServeArgs, StoreArgs};
use crate::engine::{Engine, EngineSettings};
use crate::sandbox::{EgressPolicy, NetLimits, Sandbox, SandboxLimits};
use crate::store::{Backend, Store};
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

    /// How log lines are written to stderr: `text` for people, `json` (one object per line:
    /// timestamp, level, target, fields, spans) for log shippers.
    #[arg(long, env = "PUSHRAIL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the API and the delivery engine.
    Serve(Box<ServeArgs>),
    /// Manages tenants (vendors).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Rotates the master key and the session signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspects destination plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Re-wraps every data key under a new master key. Embedded default: generates the new key
    /// into the key file. With PUSHRAIL_MASTER_KEY: re-wraps under it; keys named by
    /// PUSHRAIL_MASTER_KEY_PREVIOUS must still be given until this has run.
    Rotate,
    /// Starts signing sessions with a new key; tokens signed by the old one stay valid until they
    /// expire.
    RotateSigning,
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// Loads every plugin in the plugins dir and lists the types.
    List {
        #[arg(long, env = "PUSHRAIL_PLUGINS_DIR", default_value = "plugins/dist")]
        plugins_dir: std::path::PathBuf,
    },
    /// Loads one component, prints its type, schemas and imports, and runs its `validate` on a
    /// sample config (built from the schema's defaults unless given).
    Check {
        file: std::path::PathBuf,
        #[arg(long)]
        config: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Creates a tenant and prints its API key, once.
    Create {
        #[arg(long)]
        name: String,
    },
    /// Sets a tenant's own rate limits, in requests per second (the burst is twice the rate);
    /// 0 or leaving one out puts it back to the host's --rate-limit. Taken up by every host at
    /// once.
    Limits {
        /// The tenant's id, as `tenant create` printed it.
        tenant_id: String,
        /// The vendor API (ingest and the rest), for the whole tenant.
        #[arg(long, default_value_t = 0)]
        rate_limit: u32,
        /// The embed API, for each of the tenant's customers.
        #[arg(long, default_value_t = 0)]
        embed_rate_limit: u32,
    },
}

const SIGNING_KEY_RELOAD: std::time::Duration = std::time::Duration::from_secs(30);

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    init_tracing(cli.log_format);
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
        Command::Tenant(TenantCommand::Limits {
            tenant_id,
            rate_limit,
            embed_rate_limit,
        }) => {
            let store = open_store(&cli.store).await?;
            let own = |limit: u32| (limit > 0).then_some(i64::from(limit));
            if !store
                .set_tenant_limits(&tenant_id, own(rate_limit), own(embed_rate_limit))
                .await?
            {
                anyhow::bail!("no tenant {tenant_id:?}");
            }
            println!(
                "{}",
                serde_json::json!({
                    "tenant_id": tenant_id,
                    "rate_limit": own(rate_limit),
                    "embed_rate_limit": own(embed_rate_limit),
                })
            );
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate) => rotate_master_key(&cli.store).await,
        Command::Keys(KeysCommand::RotateSigning) => {
            let store = open_store(&cli.store).await?;
            let vault = Arc::new(Vault::from_env(
                &cli.store.data_dir,
                cli.store.database_url.is_none(),
            )?);
            let kid = SessionSigner::load(store, vault).await?.rotate().await?;
            println!("{}", serde_json::json!({ "signing_kid": kid }));
            Ok(())
        }
        Command::Plugins(PluginsCommand::List { plugins_dir }) => {
            let host = inspection_host(&cli.store, &plugins_dir).await?;
            for plugin in host.plugins() {
                println!(
                    "{}\t{}\tpushrail:destination@{}\t{}",
                    plugin.info.id,
                    plugin.info.name,
                    plugin.info.wit_version,
                    plugin.source.display()
                );
            }
            Ok(())
        }
        Command::Plugins(PluginsCommand::Check { file, config }) => {
            check_plugin(&cli.store, &file, config).await
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PUSHRAIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

async fn open_store(args: &StoreArgs) -> anyhow::Result<Store> {
    Store::open(&args.data_dir, args.database_url.as_deref()).await
}

async fn serve(store_args: &StoreArgs, args: ServeArgs) -> anyhow::Result<()> {
    let store = open_store(store_args).await?;
    let vault = Arc::new(Vault::from_env(
        &store_args.data_dir,
        store_args.database_url.is_none(),
    )?);
    let sessions = SessionSigner::load(store.clone(), vault.clone()).await?;

    // Every live instance holds a pooled slot: the engine's calls, the API's, and the warm ones.
    let instances = args
        .concurrency
        .saturating_add(args.api_plugin_calls)
        .saturating_add(args.warm_sessions)
        .saturating_add(8);
    let limits = SandboxLimits {
        memory_bytes: args.plugin_memory_mib * 1024 * 1024,
        timeout: args.plugin_timeout,
        instances: u32::try_from(instances).unwrap_or(u32::MAX),
        warm_sessions: args.warm_sessions,
        idle_timeout: args.session_idle,
        threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let plugins = Sandbox::new(
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
    let api_plugin_calls = Arc::new(tokio::sync::Semaphore::new(args.api_plugin_calls.max(1)));

    let aws_roles = Arc::new(AwsRoles::new(args.aws.operator())?);
    let engine = Engine::new(
        store.clone(),
        plugins.clone(),
        vault.clone(),
        aws_roles.clone(),
        EngineSettings {
            retry: args.retry_schedule.clone(),
            batch_size: args.batch_size.max(1),
            linger: args.batch_linger,
            concurrency: args.concurrency.max(1),
            destination_concurrency: args.destination_concurrency.max(1),
            lease: args.lease,
            poll_interval: args.poll_interval,
            auto_disable_after: args.auto_disable_after,
            circuit_after: args.circuit_after,
        },
    );
    engine.start();

    let limits = match store.backend() {
        Backend::Sqlite => RateLimits::new(args.rate_limit),
        Backend::Postgres => RateLimits::shared(args.rate_limit, store.clone()),
    };
    let state = AppState::new(Shared {
        store,
        vault,
        sessions,
        plugins,
        engine,
        limits,
        api_plugin_calls,
        aws_roles,
    });
    // Another process may rotate the signing key (`keys rotate-signing`, another host); pick up
    // the new key for signing within a bounded time. Verification reloads on an unknown kid.
    let reloader = state.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SIGNING_KEY_RELOAD).await;
            if let Err(error) = reloader.sessions.reload().await {
                tracing::error!("reloading signing keys failed: {error:#}");
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, "pushrail is serving");
    // On SIGTERM or SIGINT: no new connections, no new claims; calls in flight finish (within
    // --shutdown-grace) and their attempts are recorded before the process exits.
    let engine = state.engine.clone();
    let grace = args.shutdown_grace;
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel();
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(async move {
            stop_signal().await;
            tracing::info!(
                grace = %humantime::format_duration(grace),
                "stopping: no new requests or claims; letting calls in flight finish"
            );
            tokio::spawn(async move {
                let _ = drained_tx.send(engine.drain(grace).await);
            });
        })
        .await?;
    match tokio::time::timeout(grace + std::time::Duration::from_secs(1), drained_rx).await {
        Ok(Ok(true)) => tracing::info!("stopped: every call in flight finished and was recorded"),
        _ => tracing::warn!(
            "stopped with calls still in flight after the grace period; their leases hand them to another host"
        ),
    }
    Ok(())
}

/// The first SIGTERM or SIGINT.
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Moves every sealed secret onto a new master key, then forgets the old ones.
async fn rotate_master_key(args: &StoreArgs) -> anyhow::Result<()> {
    let store = open_store(args).await?;
    let vault = Arc::new(Vault::from_env(
        &args.data_dir,
        args.database_url.is_none(),
    )?);
    if vault.key_file().is_some() {
        vault.promote(crate::vault::MasterKey::generate())?;
    }
    let signer = SessionSigner::load(store.clone(), vault.clone()).await?;
    let mut credentials = 0;
    // Repeat until a pass finds nothing: a live server may seal a new secret under the old key
    // until it notices the new key file.
    loop {
        let pending = store
            .credentials_not_under(&vault.current_kid(), 500)
            .await?;
        if pending.is_empty() {
            break;
        }
        for row in pending {
            let context = crate::credentials::context(&row.scope, &row.id);
            let rewrapped = vault
                .rewrap(&context, &row.sealed)
                .with_context(|| format!("re-wrapping credential {}", row.id))?;
            if store
                .update_wrapped_key(&row.id, &row.sealed, &rewrapped)
                .await?
            {
                credentials += 1;
            }
        }
    }
    let signing_keys = signer.rewrap_all().await?;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let stragglers = store.credentials_not_under(&vault.current_kid(), 1).await?;
    anyhow::ensure!(
        stragglers.is_empty(),
        "a credential was sealed under the old key during the rotation; run keys rotate again"
    );
    if vault.key_file().is_some() {
        vault.retire_previous()?;
    }
    println!(
        "{}",
        serde_json::json!({
            "master_kid": vault.current_kid(),
            "credentials": credentials,
            "signing_keys": signing_keys,
        })
    );
    Ok(())
}

fn inspection_limits() -> SandboxLimits {
    SandboxLimits {
        timeout: std::time::Duration::from_secs(10),
        instances: 16,
        warm_sessions: 0,
        threads: 1,
        ..SandboxLimits::default()
    }
}

async fn inspection_host(
    args: &StoreArgs,
    plugins_dir: &std::path::Path,
) -> anyhow::Result<Sandbox> {
    let host = Sandbox::new(
        EgressPolicy::default(),
        NetLimits::default(),
        inspection_limits(),
    )?;
    host.load_dir(plugins_dir, &args.data_dir.join("plugin-cache"))
        .await?;
    Ok(host)
}

async fn check_plugin(
    args: &StoreArgs,
    file: &std::path::Path,
    config: Option<String>,
) -> anyhow::Result<()> {
    let host = Sandbox::new(
        EgressPolicy::default(),
        NetLimits::default(),
        inspection_limits(),
    )?;
    let info = host.load(file, &args.data_dir.join("plugin-cache")).await?;
    let plugin = host.get(&info.id).context("the plugin did not register")?;
    let sample = match config {
        Some(text) => serde_json::from_str(&text).context("--config is not JSON")?,
        None => sample_config(&info.config_schema),
    };
    let mut errors = plugin.check_schema(&sample);
    if errors.is_empty() {
        errors = host.validate(&plugin, &sample.to_string()).await?;
    }
    let report = serde_json::json!({
        "type": info.id,
        "name": info.name,
        "description": info.description,
        "wit": format!("pushrail:destination@{}", info.wit_version),
        "max_batch_size": info.max_batch_size,
        "credential_kinds": info.credential_kinds,
        "config_schema": info.config_schema,
        "credential_schema": info.credential_schema,
        "imports": plugin.imports,
        "sample_config": sample,
        "validate": errors
            .iter()
            .map(|e| serde_json::json!({ "field": e.field, "message": e.message }))
            .collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// A config from the schema's `default`s and first `examples`, for a first `validate` run.
fn sample_config(schema: &serde_json::Value) -> serde_json::Value {
    let mut sample = serde_json::Map::new();
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            if let Some(value) = property
                .get("default")
                .or_else(|| property["examples"].get(0))
            {
                sample.insert(name.clone(), value.clone());
            }
        }
    }
    serde_json::Value::Object(sample)
}
