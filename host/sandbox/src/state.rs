//! The store data of one sandbox: what one destination's plugin instance can see. A session's
//! instance lives across calls of the same destination only, so nothing of one sub-tenant's
//! delivery is observable by another's.

use std::time::Instant;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::StoreLimits;
use wasmtime_wasi::p2::pipe::{AsyncReadStream, AsyncWriteStream};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::http::{Hooks, HttpEgress};
use crate::types::NetError;

/// TCP connections one call may open.
const MAX_CONNECTIONS_PER_CALL: u32 = 16;
/// Live resources (streams, requests, pollables, ...) one instance may hold at once.
const MAX_RESOURCES_PER_INSTANCE: usize = 4096;

pub struct InvocationState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: Hooks,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    egress: HttpEgress,
    connections_left: u32,
    /// When the running call must end; read by the epoch callback.
    pub(crate) deadline: Instant,
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
                table.set_max_capacity(MAX_RESOURCES_PER_INSTANCE);
                table
            },
            limits,
            egress: egress.clone(),
            connections_left: MAX_CONNECTIONS_PER_CALL,
            deadline: Instant::now(),
            label,
        }
    }

    /// A new call starts: its own deadline, and its own budget of requests and connections.
    pub(crate) fn start_call(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.connections_left = MAX_CONNECTIONS_PER_CALL;
        self.hooks = self.egress.hooks();
    }

    pub(crate) fn plugin_log(&self, level: tracing::Level, message: String) {
        let message: String = message.chars().take(2048).collect();
        let plugin = self.label.as_str();
        match level {
            tracing::Level::TRACE => {
                tracing::trace!(target: "pushrail::plugin", plugin, "{message}")
            }
            tracing::Level::DEBUG => {
                tracing::debug!(target: "pushrail::plugin", plugin, "{message}")
            }
            tracing::Level::INFO => tracing::info!(target: "pushrail::plugin", plugin, "{message}"),
            tracing::Level::WARN => tracing::warn!(target: "pushrail::plugin", plugin, "{message}"),
            tracing::Level::ERROR => {
                tracing::error!(target: "pushrail::plugin", plugin, "{message}")
            }
        }
    }

    /// The `http-batch` interface's `send`: within the call's request budget, the rest refused.
    pub(crate) async fn http_batch(
        &mut self,
        mut requests: Vec<crate::http::BatchRequest>,
        max_in_flight: usize,
        max_body: usize,
    ) -> Vec<Result<crate::http::BatchResponse, crate::http::BatchError>> {
        let granted = self.hooks.take(requests.len());
        let refused = requests.split_off(granted).len();
        let egress = self.hooks.egress().clone();
        let mut answers = egress.send_batch(requests, max_in_flight, max_body).await;
        answers.extend((0..refused).map(|_| Err(crate::http::BatchError::LimitReached)));
        answers
    }

    /// The `net` interface's `connect`, shared by every WIT version.
    pub(crate) async fn connect(
        &mut self,
        host: String,
        port: u16,
        tls: bool,
        timeout_ms: Option<u32>,
    ) -> Result<(Resource<DynInputStream>, Resource<DynOutputStream>), NetError> {
        if self.connections_left == 0 {
            return Err(NetError::LimitReached);
        }
        self.connections_left -= 1;
        let limits = self.egress.limits();
        let timeout = timeout_ms
            .map(|ms| std::time::Duration::from_millis(ms.into()))
            .unwrap_or(limits.connect_timeout)
            .min(limits.connect_timeout);
        let stream = crate::tcp::connect(self.egress.policy(), &host, port, tls, timeout).await?;
        let (reader, writer) = tokio::io::split(stream);
        let input: DynInputStream = Box::new(AsyncReadStream::new(reader));
        let output: DynOutputStream = Box::new(AsyncWriteStream::new(64 * 1024, writer));
        let input = self
            .table
            .push(input)
            .map_err(|e| NetError::Unreachable(e.to_string()))?;
        let output = self
            .table
            .push(output)
            .map_err(|e| NetError::Unreachable(e.to_string()))?;
        Ok((input, output))
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

/// The `log` and `net` imports of one WIT version, in that version's generated types: every
/// version behaves the same, so each adapter states only its names (`log` and `net` must be that
/// version's generated modules, in scope where this is invoked).
macro_rules! host_imports {
    () => {
        impl log::Host for $crate::state::InvocationState {
            async fn log(&mut self, level: log::Level, message: String) {
                self.plugin_log(
                    match level {
                        log::Level::Trace => tracing::Level::TRACE,
                        log::Level::Debug => tracing::Level::DEBUG,
                        log::Level::Info => tracing::Level::INFO,
                        log::Level::Warn => tracing::Level::WARN,
                        log::Level::Error => tracing::Level::ERROR,
                    },
                    message,
                );
            }
        }

        impl net::Host for $crate::state::InvocationState {
            async fn connect(
                &mut self,
                host: String,
                port: u16,
                options: net::ConnectOptions,
            ) -> Result<
                (
                    wasmtime::component::Resource<wasmtime_wasi::p2::DynInputStream>,
                    wasmtime::component::Resource<wasmtime_wasi::p2::DynOutputStream>,
                ),
                net::NetError,
            > {
                use $crate::types::NetError;
                self.connect(host, port, options.tls, options.timeout_ms)
                    .await
                    .map_err(|e| match e {
                        NetError::Denied(m) => net::NetError::Denied(m),
                        NetError::Unresolved(m) => net::NetError::Unresolved(m),
                        NetError::Unreachable(m) => net::NetError::Unreachable(m),
                        NetError::Timeout => net::NetError::Timeout,
                        NetError::Tls(m) => net::NetError::Tls(m),
                        NetError::LimitReached => net::NetError::LimitReached,
                    })
            }
        }
    };
}
pub(crate) use host_imports;
