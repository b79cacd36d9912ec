//! Compiling components once and reading what they say about themselves.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

use crate::types::{PluginInfo, RawDescription};

/// Compiles `path`, or loads the artifact compiled from the same bytes on an earlier start.
/// Artifacts are keyed by the component's hash and the engine's compatibility hash; one that no
/// longer deserializes anyway is compiled again.
pub fn compile_cached(engine: &Engine, path: &Path, cache_dir: &Path) -> anyhow::Result<Component> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("creating {}", cache_dir.display()))?;
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let engine_hash = {
        use std::hash::{Hash as _, Hasher as _};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hasher.finish()
    };
    let cached: PathBuf = cache_dir.join(format!("{digest}-{engine_hash:016x}.cwasm"));
    if cached.exists() {
        // SAFETY: the artifact was written by this host's own `precompile_component` into its
        // private cache dir; wasmtime checks that it matches the engine's configuration.
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => return Ok(component),
            Err(error) => {
                tracing::info!(path = %cached.display(), %error, "recompiling a stale plugin artifact")
            }
        }
    }
    let artifact = engine.precompile_component(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a valid WebAssembly component: {e:#}",
            path.display()
        )
    })?;
    // Several hosts may share a cache dir: write privately, then rename into place atomically.
    let temp = cached.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&temp, &artifact)?;
    std::fs::rename(&temp, &cached)?;
    // SAFETY: as above; the bytes were produced just now by the same engine.
    Ok(unsafe { Component::deserialize(engine, &artifact) }?)
}

pub fn check_description(
    raw: RawDescription,
    wit_version: &'static str,
) -> anyhow::Result<PluginInfo> {
    let valid_id = !raw.id.is_empty()
        && raw.id.len() <= 64
        && raw
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid_id {
        bail!(
            "type id {:?} must be 1 to 64 characters of a-z, 0-9 and _",
            raw.id
        );
    }
    let config_schema: serde_json::Value =
        serde_json::from_str(&raw.config_schema).context("config schema is not JSON")?;
    let credential_schema = raw
        .credential_schema
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .context("credential schema is not JSON")?;
    Ok(PluginInfo {
        id: raw.id,
        name: raw.name,
        description: raw.description,
        config_schema,
        credential_schema,
        credential_kinds: raw.credential_kinds,
        credential_required: raw.credential_required,
        max_batch_size: raw.max_batch_size.max(1),
        wit_version,
    })
}
