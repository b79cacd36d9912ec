//! The per-invocation store data: what one plugin call can see. A fresh one per call, so nothing
//! of one sub-tenant's delivery is observable by the next.

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::StoreLimits;
use wasmtime_wasi::p2::pipe::{AsyncReadStream, AsyncWriteStream};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::pushrail::destination::{log, net};
use super::http::{Hooks, HttpEgress};

/// TCP connections one invocation may open.
const MAX_CONNECTIONS_PER_INVOCATION: u32 = 16;
/// Live resources (streams, requests, pollables, ...) one invocation may hold at once.
const MAX_RESOURCES_PER_INVOCATION: usize = 4096;

pub struct InvocationState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: Hooks,
    table: ResourceTable,
    pub(super) limits: StoreLimits,
    egress: HttpEgress,
    connections_left: u32,
    /// What the plugin's log lines are tagged with.
    label: String,
}

impl InvocationState {
    pub fn new(egress: &HttpEgress, limits: StoreLimits, label: String) -> Self {
        // No preopened directories, no environment, no arguments, no inherited stdio, and the
        // default socket policy of wasmtime-wasi (deny all): a plugin's only ways out are
        // `wasi:http` and the `net` interface, both through the egress policy.
        let wasi = WasiCtx::builder().build();
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            hooks: egress.hooks(),
            table: {
                let mut table = ResourceTable::new();
                table.set_max_capacity(MAX_RESOURCES_PER_INVOCATION);
                table
            },
            limits,
            egress: egress.clone(),
            connections_left: MAX_CONNECTIONS_PER_INVOCATION,
            label,
        }
    }
}

impl WasiView for InvocationState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InvocationState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.hooks,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

impl log::Host for InvocationState {
    async fn log(&mut self, level: log::Level, message: String) {
        let message: String = message.chars().take(2048).collect();
        let plugin = self.label.as_str();
        match level {
            log::Level::Trace => tracing::trace!(target: "pushrail::plugin", plugin, "{message}"),
            log::Level::Debug => tracing::debug!(target: "pushrail::plugin", plugin, "{message}"),
            log::Level::Info => tracing::info!(target: "pushrail::plugin", plugin, "{message}"),
            log::Level::Warn => tracing::warn!(target: "pushrail::plugin", plugin, "{message}"),
            log::Level::Error => tracing::error!(target: "pushrail::plugin", plugin, "{message}"),
        }
    }
}

impl net::Host for InvocationState {
    async fn connect(
        &mut self,
        host: String,
        port: u16,
        options: net::ConnectOptions,
    ) -> Result<(Resource<DynInputStream>, Resource<DynOutputStream>), net::NetError> {
        if self.connections_left == 0 {
            return Err(net::NetError::LimitReached);
        }
        self.connections_left -= 1;
        let limits = self.egress.limits();
        let timeout = options
            .timeout_ms
            .map(|ms| std::time::Duration::from_millis(ms.into()))
            .unwrap_or(limits.connect_timeout)
            .min(limits.connect_timeout);
        let stream =
            super::tcp::connect(self.egress.policy(), &host, port, options.tls, timeout).await?;
        let (reader, writer) = tokio::io::split(stream);
        let input: DynInputStream = Box::new(AsyncReadStream::new(reader));
        let output: DynOutputStream = Box::new(AsyncWriteStream::new(64 * 1024, writer));
        let input = self
            .table
            .push(input)
            .map_err(|e| net::NetError::Unreachable(e.to_string()))?;
        let output = self
            .table
            .push(output)
            .map_err(|e| net::NetError::Unreachable(e.to_string()))?;
        Ok((input, output))
    }
}
