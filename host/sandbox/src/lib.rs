//! Pushrail's plugin sandbox: loads destination components, describes them, and runs their calls
//! in bounded instances, each holding one destination's warm session.
//!
//! Isolation rule: an instance (its own `Store`: linear memory, resource table, connections)
//! belongs to one destination of one sub-tenant. It is made from a pre-linked `InstancePre` over
//! the pooling allocator, kept warm between that destination's batches (so a plugin keeps its
//! connections and tokens), and never handed another destination's batch. See [`warm`] for when
//! it is dropped.
//!
//! Limits: a memory cap per instance; per call, an epoch deadline and a tokio timeout. The guest
//! yields to the executor on every epoch tick (10 ms), so a plugin spinning in wasm never holds a
//! worker thread, and is stopped at its deadline; the timeout covers a guest blocked in a host
//! call, which epochs cannot interrupt. Epochs rather than fuel: a load and compare per loop
//! back-edge instead of fuel's per-block accounting, and a deadline in time is what the delivery
//! log reports anyway. Calls run on the sandbox's own runtime threads, never on the threads
//! that serve the API.
//!
//! WIT versions: one adapter module per `pushrail:destination` version ([`v0_1`], [`v0_2`]),
//! converting into the host-owned [`types`]; nothing outside this crate sees generated bindings.

pub mod egress;
mod http;
mod loader;
mod session;
mod state;
mod tcp;
pub mod types;
mod v0_1;
mod v0_2;
pub mod warm;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Engine, PoolingAllocationConfig};

pub use egress::{EgressPolicy, NetLimits};
use http::HttpEgress;
use session::Pre;
pub use session::SessionSpec;
use state::InvocationState;
pub use types::{
    Credential, Delivered, Event, EventResult, Failure, FailureKind, FieldError, Outcome,
    PluginInfo,
};
pub use warm::SessionKey;

/// The WIT versions this host loads, newest first.
pub const WIT_VERSIONS: &[&str] = &[v0_2::VERSION, v0_1::VERSION];

/// Bytes of each pooled memory and table slot kept resident between instances.
const KEEP_RESIDENT: usize = 1 << 20;

/// How often the epoch advances: the granularity of the deadline and of the guest's yields.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Time beyond a call's deadline before the tokio timeout gives up on it; the epoch deadline
/// fires first for a guest running wasm.
const TIMEOUT_GRACE: Duration = Duration::from_millis(500);

pub struct Plugin {
    pub info: PluginInfo,
    pub source: PathBuf,
    /// The interfaces the component imports, for `plugins check`.
    pub imports: Vec<String>,
    config_validator: jsonschema::Validator,
    pre: Pre,
}

impl Plugin {
    /// Checks a config against the type's JSON Schema; each error names its field.
    pub fn check_schema(&self, config: &serde_json::Value) -> Vec<FieldError> {
        self.config_validator
            .iter_errors(config)
            .map(|error| {
                let path = error.instance_path.to_string();
                let field = path.trim_start_matches('/').replace('/', ".");
                FieldError {
                    field: if field.is_empty() {
                        "config".to_owned()
                    } else {
                        format!("config.{field}")
                    },
                    message: error.to_string(),
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    pub memory_bytes: usize,
    /// Wall clock per call.
    pub timeout: Duration,
    /// Plugin instances alive at once, warm sessions included; sizes the pooling allocator.
    pub instances: u32,
    /// Warm sessions kept between batches, at most; the least recently used goes first.
    pub warm_sessions: usize,
    /// A warm session unused this long is dropped.
    pub idle_timeout: Duration,
    /// Threads of the sandbox's own runtime.
    pub threads: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            timeout: Duration::from_secs(30),
            instances: 64,
            warm_sessions: 32,
            idle_timeout: Duration::from_secs(60),
            threads: 2,
        }
    }
}

/// Why a call did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("plugin call exceeded its {0:?} deadline")]
    Timeout(Duration),
    #[error("plugin trapped: {0}")]
    Trap(String),
    #[error("plugin could not be instantiated: {0}")]
    Instantiate(String),
}

impl From<InvokeError> for Failure {
    fn from(error: InvokeError) -> Self {
        Failure::retryable(match &error {
            InvokeError::Timeout(_) => format!("timeout: {error}"),
            _ => error.to_string(),
        })
    }
}

/// The sandbox; cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
    runtime: Arc<OwnRuntime>,
}

pub(crate) struct Inner {
    engine: Engine,
    linker: Linker<InvocationState>,
    egress: HttpEgress,
    limits: SandboxLimits,
    plugins: RwLock<BTreeMap<String, Arc<Plugin>>>,
    warm: warm::WarmSessions,
    /// The sandbox runtime, for closing sessions from any thread.
    runtime: tokio::runtime::Handle,
}

impl Sandbox {
    pub fn new(
        policy: EgressPolicy,
        net: NetLimits,
        limits: SandboxLimits,
    ) -> anyhow::Result<Self> {
        let instances = limits.instances.max(limits.warm_sessions as u32 + 2);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(instances)
            .total_core_instances(instances * 8)
            .total_memories(instances * 2)
            .total_tables(instances * 4)
            .max_memories_per_component(2)
            .max_memory_size(limits.memory_bytes)
            // Reset the first pages of a slot with memset instead of madvise: a plugin call
            // touches about this much, and re-faulting it (with TLB shootdowns) costs more.
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT);
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine =
            Engine::new(&config).map_err(|e| anyhow::anyhow!("creating the wasm engine: {e:#}"))?;
        spawn_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        v0_1::add_to_linker(&mut linker)?;
        v0_2::add_to_linker(&mut linker)?;

        let runtime = OwnRuntime::new(limits.threads)?;
        let egress = runtime.enter(|| HttpEgress::new(Arc::new(policy), net))?;
        let inner = Arc::new(Inner {
            engine,
            linker,
            egress,
            limits,
            plugins: RwLock::new(BTreeMap::new()),
            warm: warm::WarmSessions::new(limits.warm_sessions, limits.idle_timeout),
            runtime: runtime.handle().clone(),
        });
        runtime.handle().spawn(warm::sweep(Arc::downgrade(&inner)));
        Ok(Self {
            inner,
            runtime: Arc::new(runtime),
        })
    }

    /// Loads every `*.wasm` in `dir`, compiling each once into `cache_dir`. A plugin that fails to
    /// load, or whose type id is already taken, is skipped with an error in the log.
    pub async fn load_dir(&self, dir: &Path, cache_dir: &Path) -> anyhow::Result<()> {
        let mut paths: Vec<_> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
                .collect(),
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "no plugins loaded: cannot read the plugins dir");
                return Ok(());
            }
        };
        paths.sort();
        for path in paths {
            match self.load(&path, cache_dir).await {
                Ok(info) => {
                    tracing::info!(plugin = %info.id, wit = info.wit_version, path = %path.display(), "loaded plugin")
                }
                Err(error) => tracing::error!(path = %path.display(), "plugin refused: {error:#}"),
            }
        }
        Ok(())
    }

    pub async fn load(&self, path: &Path, cache_dir: &Path) -> anyhow::Result<PluginInfo> {
        let inner = &self.inner;
        let component = loader::compile_cached(&inner.engine, path, cache_dir)?;
        let imports = component
            .component_type()
            .imports(&inner.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let pre = inner.linker.instantiate_pre(&component).map_err(|e| {
            anyhow::anyhow!(
                "{e:#} (does it target pushrail:destination {}, and import only what that world offers?)",
                WIT_VERSIONS.join(" or ")
            )
        })?;
        let pre = Pre::new(pre).map_err(|e| {
            anyhow::anyhow!(
                "{e:#}: the component exports no pushrail:destination/plugin of a version this host supports ({})",
                WIT_VERSIONS.join(", ")
            )
        })?;
        let raw = {
            let mut instance = session::Instance::new(inner, &pre, "describe")
                .await
                .map_err(|e| anyhow::anyhow!("instantiating the plugin: {e:#}"))?;
            instance.describe(inner.limits.timeout).await?
        };
        let info = loader::check_description(raw, pre.version())?;
        let config_validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&info.config_schema)
            .map_err(|e| anyhow::anyhow!("config schema is not a valid JSON Schema: {e}"))?;
        let mut plugins = inner.plugins.write().expect("plugins lock");
        if let Some(existing) = plugins.get(&info.id) {
            anyhow::bail!(
                "type id {:?} is already provided by {}",
                info.id,
                existing.source.display()
            );
        }
        let plugin = Plugin {
            info: info.clone(),
            source: path.to_owned(),
            imports,
            config_validator,
            pre,
        };
        plugins.insert(info.id.clone(), Arc::new(plugin));
        Ok(info)
    }

    pub fn get(&self, type_id: &str) -> Option<Arc<Plugin>> {
        self.inner
            .plugins
            .read()
            .expect("plugins lock")
            .get(type_id)
            .cloned()
    }

    /// The loaded plugins, ordered by type id.
    pub fn plugins(&self) -> Vec<Arc<Plugin>> {
        self.inner
            .plugins
            .read()
            .expect("plugins lock")
            .values()
            .cloned()
            .collect()
    }

    pub fn limits(&self) -> SandboxLimits {
        self.inner.limits
    }

    /// Runs `validate` in a fresh instance of its own.
    pub async fn validate(
        &self,
        plugin: &Arc<Plugin>,
        config: &str,
    ) -> Result<Vec<FieldError>, InvokeError> {
        let inner = self.inner.clone();
        let plugin = plugin.clone();
        let config = config.to_owned();
        self.run(async move {
            let mut instance =
                session::Instance::with_room(&inner, &plugin.pre, &plugin.info.id).await?;
            instance.validate(&config, inner.limits.timeout).await
        })
        .await
    }

    /// Delivers one batch of one destination in that destination's warm session, opening one
    /// from `spec` when none is warm for `key`. The answer is the plugin's, per event; `Err` is
    /// the one answer for the whole batch (the session could not be opened, or the call trapped
    /// or ran out of time, after which the session is dropped).
    pub async fn deliver(
        &self,
        plugin: &Arc<Plugin>,
        key: SessionKey,
        spec: impl FnOnce() -> Result<SessionSpec, Failure> + Send + 'static,
        events: Vec<Event>,
    ) -> Result<Vec<Outcome>, Failure> {
        let inner = self.inner.clone();
        let plugin = plugin.clone();
        self.run(async move { session::deliver(&inner, &plugin, key, spec, events).await })
            .await
    }

    /// Drops the warm sessions of a destination (its config or credential changed, or it was
    /// disabled or deleted), closing their connections.
    pub fn invalidate(&self, destination_id: &str) {
        self.inner.warm.invalidate(&self.inner, destination_id);
    }

    /// Warm sessions kept right now.
    pub fn warm_sessions(&self) -> usize {
        self.inner.warm.len()
    }

    /// Runs a call on the sandbox's own runtime. A call whose caller went away runs to its end
    /// (its deadline bounds it) so its session is put back or dropped properly.
    async fn run<T: Send + 'static>(
        &self,
        call: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        match self.runtime.handle().spawn(call).await {
            Ok(value) => value,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => panic!("the sandbox runtime shut down while a call was running"),
        }
    }
}

/// Runs `call` with the epoch deadline set in `state` and a tokio timeout a little beyond it.
pub(crate) async fn bounded<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = wasmtime::Result<T>>,
) -> Result<T, InvokeError> {
    match tokio::time::timeout(timeout + TIMEOUT_GRACE, call).await {
        Err(_) => Err(InvokeError::Timeout(timeout)),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(trap(error, timeout)),
    }
}

fn trap(error: wasmtime::Error, timeout: Duration) -> InvokeError {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => InvokeError::Timeout(timeout),
        Some(trap) => InvokeError::Trap(trap.to_string()),
        None => InvokeError::Trap(format!("{error:#}")),
    }
}

fn spawn_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("pushrail-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match engine.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .expect("spawning the epoch thread");
}

/// The sandbox's own multi-threaded runtime. Dropped in the background: the sandbox may be
/// dropped inside another runtime (a test's), where a blocking shutdown would panic.
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    fn new(threads: usize) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("pushrail-sandbox")
            .enable_all()
            .build()?;
        Ok(Self(Some(runtime)))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("runtime present until drop")
            .handle()
    }

    fn enter<T>(&self, f: impl FnOnce() -> T) -> T {
        let _guard = self.handle().enter();
        f()
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
