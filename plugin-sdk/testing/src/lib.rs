//! A test harness for plugin authors: build your plugin, load it into the same sandbox the host
//! uses (same limits, same egress policy with loopback opened, same warm sessions), and call it
//! against a local HTTP or TCP peer from `cargo test`. It depends on the sandbox crate only, not
//! on the server.
//!
//! ```ignore
//! #[tokio::test]
//! async fn delivers_a_batch() {
//!     let harness = pushrail_plugin_testing::Harness::build(env!("CARGO_MANIFEST_DIR")).await.unwrap();
//!     assert!(harness.validate(json!({ "url": "http://127.0.0.1:9/" })).await.is_empty());
//!     let results = harness
//!         .deliver(json!({ "url": peer_url }), Some(("bearer", json!({ "token": "t" }))), vec![event("e1", json!({}))])
//!         .await;
//!     assert!(results[0].is_ok());
//! }
//! ```
//!
//! Calls with the same config and credential reuse one warm session, as the host does for one
//! destination; another config or credential opens another.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use pushrail_sandbox::{
    Credential, EgressPolicy, Event, NetLimits, Plugin, Sandbox, SandboxLimits, SessionKey,
    SessionSpec,
};
use serde_json::Value;

pub use pushrail_sandbox::{Delivered, EventResult, Failure, FailureKind, PluginInfo};

pub struct Harness {
    host: Sandbox,
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
            timeout: Duration::from_secs(30),
            instances: 16,
            warm_sessions: 8,
            ..SandboxLimits::default()
        };
        let loopback = vec!["127.0.0.0/8".parse()?, "::1/128".parse()?];
        let host = Sandbox::new(EgressPolicy::new(loopback), NetLimits::default(), limits)?;
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

    /// One batch, with an optional credential `(kind, secret)`: the plugin's answer for each
    /// event, in the order given. An event the plugin did not answer for gets a retryable
    /// failure saying so, as in the host.
    pub async fn deliver(
        &self,
        config: Value,
        credential: Option<(&str, Value)>,
        events: Vec<Event>,
    ) -> Vec<EventResult> {
        let config = config.to_string();
        let credential = credential.map(|(kind, secret)| Credential {
            kind: kind.to_owned(),
            secret: secret.to_string(),
        });
        let key = SessionKey::new(
            "harness",
            &[
                config.as_bytes(),
                credential.as_ref().map_or(&b""[..], |c| c.kind.as_bytes()),
                credential
                    .as_ref()
                    .map_or(&b""[..], |c| c.secret.as_bytes()),
            ],
        );
        let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        let spec = move || Ok(SessionSpec { config, credential });
        match self.host.deliver(&self.plugin, key, spec, events).await {
            Ok(outcomes) => ids
                .iter()
                .map(|id| {
                    outcomes
                        .iter()
                        .find(|o| &o.event_id == id)
                        .map(|o| o.result.clone())
                        .unwrap_or_else(|| {
                            Err(Failure::retryable(
                                "the plugin gave no answer for this event",
                            ))
                        })
                })
                .collect(),
            Err(failure) => ids.iter().map(|_| Err(failure.clone())).collect(),
        }
    }

    /// Warm sessions the harness holds right now.
    pub fn warm_sessions(&self) -> usize {
        self.host.warm_sessions()
    }
}
