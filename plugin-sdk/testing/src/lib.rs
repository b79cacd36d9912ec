//! A test harness for plugin authors: build your plugin, load it into the same sandbox the host
//! uses (same limits, same egress policy with loopback opened), and call it against a local
//! HTTP or TCP peer from `cargo test`.
//!
//! ```ignore
//! #[tokio::test]
//! async fn delivers_a_batch() {
//!     let harness = pushrail_plugin_testing::Harness::build(env!("CARGO_MANIFEST_DIR")).await.unwrap();
//!     assert!(harness.validate(json!({ "url": "http://127.0.0.1:9/" })).await.is_empty());
//!     let result = harness
//!         .deliver(json!({ "url": peer_url }), Some(("bearer", json!({ "token": "t" }))), vec![event("e1", json!({}))])
//!         .await;
//!     assert!(result.is_ok());
//! }
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use pushrail::plugins::{
    Credential, Delivered, DeliveryRequest, EgressPolicy, Event, Failure, NetLimits, Plugin,
    PluginHost, SandboxLimits,
};
use serde_json::Value;

pub use pushrail::plugins::{FailureKind, PluginInfo};

pub struct Harness {
    host: PluginHost,
    plugin: Arc<Plugin>,
    _cache: PathBuf,
}

/// An event for [`Harness::deliver`], with a JSON payload.
pub fn event(id: &str, payload: Value) -> Event {
    Event {
        id: id.to_owned(),
        event_type: "test.event".to_owned(),
        occurred_at: 0,
        payload: payload.to_string().into_bytes(),
        attributes: Vec::new(),
    }
}

/// The target dir of the running test: `CARGO_TARGET_DIR`, else the one the test binary sits in
/// (`<target>/debug/deps/<test>`), else `target` beside the manifest.
fn target_dir(manifest_dir: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_owned))
        .unwrap_or_else(|| Path::new(manifest_dir).join("target"))
}

impl Harness {
    /// Builds the plugin crate in `manifest_dir` for `wasm32-wasip2` (in its own target dir, so
    /// it does not wait on the `cargo test` that runs it) and loads the component.
    pub async fn build(manifest_dir: &str) -> anyhow::Result<Self> {
        let manifest = Path::new(manifest_dir).join("Cargo.toml");
        let target_dir = target_dir(manifest_dir).join("plugin-harness");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--quiet",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target_dir)
            .status()
            .context("running cargo")?;
        if !status.success() {
            bail!("building {} for wasm32-wasip2 failed", manifest.display());
        }
        let text = std::fs::read_to_string(&manifest)?;
        let name = text
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("name = \"")
                    .and_then(|r| r.strip_suffix('"'))
            })
            .context("no package name in Cargo.toml")?;
        Self::load(&target_dir.join(format!(
            "wasm32-wasip2/release/{}.wasm",
            name.replace('-', "_")
        )))
        .await
    }

    /// Loads an already built component.
    pub async fn load(component: &Path) -> anyhow::Result<Self> {
        let limits = SandboxLimits {
            memory_bytes: 64 << 20,
            timeout: Duration::from_secs(30),
            instances: 8,
        };
        let loopback = vec!["127.0.0.0/8".parse()?, "::1/128".parse()?];
        let mut host = PluginHost::new(EgressPolicy::new(loopback), NetLimits::default(), limits)?;
        let cache = std::env::temp_dir().join("pushrail-plugin-harness-cache");
        let info = host.load(component, &cache).await?;
        let plugin = host.get(&info.id).context("the plugin did not register")?;
        Ok(Self {
            host,
            plugin,
            _cache: cache,
        })
    }

    pub fn info(&self) -> &PluginInfo {
        &self.plugin.info
    }

    /// Schema errors, then the plugin's own `validate`, as (field, message) pairs.
    pub async fn validate(&self, config: Value) -> Vec<(String, String)> {
        let mut errors = self.plugin.check_schema(&config);
        if errors.is_empty() {
            errors = self
                .host
                .validate(&self.plugin, &config.to_string())
                .await
                .expect("validate ran");
        }
        errors.into_iter().map(|e| (e.field, e.message)).collect()
    }

    /// One `deliver` call, with an optional credential `(kind, secret)`.
    pub async fn deliver(
        &self,
        config: Value,
        credential: Option<(&str, Value)>,
        events: Vec<Event>,
    ) -> Result<Delivered, Failure> {
        let request = DeliveryRequest {
            config: config.to_string(),
            credential: credential.map(|(kind, secret)| Credential {
                kind: kind.to_owned(),
                secret: secret.to_string(),
            }),
            events,
        };
        match self.host.deliver(&self.plugin, request, "harness").await {
            Ok(result) => result,
            Err(error) => Err(Failure {
                kind: FailureKind::Retryable,
                message: error.to_string(),
                status_code: None,
                retry_after_ms: None,
                response_excerpt: None,
            }),
        }
    }
}
