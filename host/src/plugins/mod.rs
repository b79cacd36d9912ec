//! The plugin host: loads destination components, describes them, and runs each call in a fresh,
//! bounded sandbox.
//!
//! Isolation rule: every invocation gets a new `Store` (fresh linear memory, fresh resource table,
//! no WASI capabilities but the two egress paths), instantiated from a pre-linked `InstancePre`
//! over the pooling allocator, so instantiation is cheap and no sub-tenant's state survives into
//! another sub-tenant's call. Limits: a memory cap per instance, an epoch deadline that traps
//! guests spinning in wasm, and a tokio timeout around the whole call for guests blocked in a host
//! call, which epochs cannot interrupt. Epochs rather than fuel: they cost a load and compare per
//! loop back-edge instead of fuel's per-block accounting, and a wall-clock deadline is what the
//! delivery log reports anyway.

pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "destination",
        imports: { default: async },
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
        require_store_data_send: true,
    });
}

pub mod egress;
mod http;
mod loader;
mod state;
mod tcp;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, PoolingAllocationConfig, Store, StoreLimitsBuilder};

pub use bindings::pushrail::destination::types::{
    Credential, Delivered, DeliveryRequest, Event, Failure, FailureKind, FieldError,
};
pub use egress::{EgressPolicy, NetLimits};
use http::HttpEgress;
use state::InvocationState;

/// Bytes of each pooled memory and table slot kept resident between instances.
const KEEP_RESIDENT: usize = 1 << 20;

/// How often the epoch advances; the granularity of the wasm deadline.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What a plugin says about itself, parsed and checked at load.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub config_schema: Value,
    pub credential_schema: Option<Value>,
    pub credential_kinds: Vec<String>,
    pub credential_required: bool,
    pub max_batch_size: u32,
}

pub struct Plugin {
    pub info: PluginInfo,
    pub source: std::path::PathBuf,
    /// The interfaces the component imports, for `plugins check`.
    pub imports: Vec<String>,
    config_validator: jsonschema::Validator,
    pre: bindings::DestinationPre<InvocationState>,
}

impl Plugin {
    /// Checks a config against the type's JSON Schema; each error names its field.
    pub fn check_schema(&self, config: &Value) -> Vec<FieldError> {
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
    pub timeout: Duration,
    /// Plugin instances alive at once; sizes the pooling allocator.
    pub instances: u32,
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

pub struct PluginHost {
    engine: Engine,
    linker: Linker<InvocationState>,
    egress: HttpEgress,
    limits: SandboxLimits,
    plugins: BTreeMap<String, Arc<Plugin>>,
}

impl PluginHost {
    pub fn new(
        policy: EgressPolicy,
        net: NetLimits,
        limits: SandboxLimits,
    ) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(limits.instances)
            .total_core_instances(limits.instances * 8)
            .total_memories(limits.instances * 2)
            .total_tables(limits.instances * 4)
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
        bindings::pushrail::destination::log::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        bindings::pushrail::destination::net::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;

        let egress = HttpEgress::new(Arc::new(policy), net)?;
        Ok(Self {
            engine,
            linker,
            egress,
            limits,
            plugins: BTreeMap::new(),
        })
    }

    /// Loads every `*.wasm` in `dir`, compiling each once into `cache_dir`. A plugin that fails to
    /// load, or whose type id is already taken, is skipped with an error in the log.
    pub async fn load_dir(&mut self, dir: &Path, cache_dir: &Path) -> anyhow::Result<()> {
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
                    tracing::info!(plugin = %info.id, path = %path.display(), "loaded plugin")
                }
                Err(error) => tracing::error!(path = %path.display(), "plugin refused: {error:#}"),
            }
        }
        Ok(())
    }

    pub async fn load(&mut self, path: &Path, cache_dir: &Path) -> anyhow::Result<PluginInfo> {
        let component = loader::compile_cached(&self.engine, path, cache_dir)?;
        let imports = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            anyhow::anyhow!("{e:#} (does it target pushrail:destination@0.1.0, and import only what that world offers?)")
        })?;
        let pre = bindings::DestinationPre::new(pre).map_err(|e| {
            anyhow::anyhow!("{e:#}: the component does not export pushrail:destination/plugin@0.1.0; this host supports WIT 0.1.0")
        })?;
        let raw = {
            let (mut store, instance) = self.instantiate(&pre, "describe").await?;
            instance
                .pushrail_destination_plugin()
                .call_describe(&mut store)
                .await?
        };
        let info = loader::check_description(raw)?;
        if let Some(existing) = self.plugins.get(&info.id) {
            anyhow::bail!(
                "type id {:?} is already provided by {}",
                info.id,
                existing.source.display()
            );
        }
        let config_validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&info.config_schema)
            .map_err(|e| anyhow::anyhow!("config schema is not a valid JSON Schema: {e}"))?;
        let plugin = Plugin {
            info: info.clone(),
            source: path.to_owned(),
            imports,
            config_validator,
            pre,
        };
        self.plugins.insert(info.id.clone(), Arc::new(plugin));
        Ok(info)
    }

    pub fn get(&self, type_id: &str) -> Option<Arc<Plugin>> {
        self.plugins.get(type_id).cloned()
    }

    pub fn plugins(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values()
    }

    async fn instantiate(
        &self,
        pre: &bindings::DestinationPre<InvocationState>,
        label: &str,
    ) -> anyhow::Result<(Store<InvocationState>, bindings::Destination)> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .table_elements(100_000)
            .instances(32)
            .tables(32)
            .memories(4)
            .trap_on_grow_failure(false)
            .build();
        let mut store = Store::new(
            &self.engine,
            InvocationState::new(&self.egress, limits, label.to_owned()),
        );
        store.limiter(|state| &mut state.limits);
        let ticks = self.limits.timeout.as_millis() / EPOCH_TICK.as_millis() + 1;
        store.set_epoch_deadline(ticks as u64);
        store.epoch_deadline_trap();
        let instance = pre.instantiate_async(&mut store).await?;
        Ok((store, instance))
    }

    /// Runs `validate` in a fresh sandbox.
    pub async fn validate(
        &self,
        plugin: &Plugin,
        config: &str,
    ) -> Result<Vec<FieldError>, InvokeError> {
        self.bounded(async {
            let (mut store, instance) = self
                .instantiate(&plugin.pre, &plugin.info.id)
                .await
                .map_err(|e| InvokeError::Instantiate(format!("{e:#}")))?;
            instance
                .pushrail_destination_plugin()
                .call_validate(&mut store, config)
                .await
                .map_err(trap)
        })
        .await
    }

    /// Runs `deliver` in a fresh sandbox; the request's credential is wiped afterwards.
    pub async fn deliver(
        &self,
        plugin: &Plugin,
        mut request: DeliveryRequest,
        label: &str,
    ) -> Result<Result<Delivered, Failure>, InvokeError> {
        let result = self
            .bounded(async {
                let (mut store, instance) = self
                    .instantiate(&plugin.pre, label)
                    .await
                    .map_err(|e| InvokeError::Instantiate(format!("{e:#}")))?;
                instance
                    .pushrail_destination_plugin()
                    .call_deliver(&mut store, &request)
                    .await
                    .map_err(trap)
            })
            .await;
        if let Some(credential) = request.credential.as_mut() {
            zeroize::Zeroize::zeroize(&mut credential.secret);
        }
        result
    }

    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, InvokeError>>,
    ) -> Result<T, InvokeError> {
        // The grace covers instantiation; the epoch deadline fires first for guests in wasm.
        let limit = self.limits.timeout + Duration::from_millis(500);
        tokio::time::timeout(limit, call)
            .await
            .map_err(|_| InvokeError::Timeout(self.limits.timeout))?
    }
}

fn trap(error: wasmtime::Error) -> InvokeError {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => InvokeError::Timeout(Duration::ZERO),
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
