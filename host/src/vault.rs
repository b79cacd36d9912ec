//! Envelope encryption of customer secrets.
//!
//! Each secret gets its own data key; the secret is sealed with AES-256-GCM under the data key and
//! the data key is sealed under the master key. Both seals bind a context string (tenant,
//! sub-tenant, record id) as associated data, so a ciphertext copied into another row or another
//! sub-tenant fails to open. Every sealed record names its master key id, which is what lets
//! `keys rotate` re-wrap data keys under a new master key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use anyhow::{bail, Context as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
const KEY_FILE: &str = "master.key";

pub struct MasterKey {
    kid: String,
    bytes: Zeroizing<[u8; 32]>,
    cipher: Aes256Gcm,
    /// Keys the HMAC of credential fingerprints, derived so the master key itself never hashes data.
    fingerprint_key: Zeroizing<[u8; 32]>,
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        if bytes.len() != 32 {
            bail!("a master key is 32 bytes, got {}", bytes.len());
        }
        let digest = Sha256::new()
            .chain_update(b"pushrail master key id\0")
            .chain_update(bytes)
            .finalize();
        let kid = format!("mk_{}", hex(&digest[..8]));
        let derived = Sha256::new()
            .chain_update(b"pushrail fingerprint key\0")
            .chain_update(bytes)
            .finalize();
        let mut owned = Zeroizing::new([0u8; 32]);
        owned.copy_from_slice(bytes);
        Ok(Self {
            kid,
            bytes: owned,
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)),
            fingerprint_key: Zeroizing::new(derived.into()),
        })
    }

    pub fn from_base64(text: &str) -> anyhow::Result<Self> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .context("master key is not base64")?,
        );
        Self::from_bytes(&bytes)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        Self::from_bytes(bytes.as_ref()).expect("32 bytes")
    }

    fn duplicate(&self) -> Self {
        Self::from_bytes(self.bytes.as_ref()).expect("32 bytes")
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({}, [redacted])", self.kid)
    }
}

/// A sealed secret as stored.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub master_kid: String,
    pub wrapped_key: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("sealed with master key {0}, which this host does not have")]
    UnknownMasterKey(String),
    #[error("secret does not open in this context (tampered, or copied from another record)")]
    Mismatch,
}

pub struct Vault {
    keys: RwLock<Arc<Keys>>,
    /// The embedded default's key file, re-read when a record names a key this host lacks:
    /// `keys rotate` run beside a live server then needs no restart.
    key_file: Option<PathBuf>,
    /// When the key file was last read, so a rotation by another process is noticed before sealing.
    loaded: std::sync::Mutex<Option<std::time::SystemTime>>,
}

struct Keys {
    current: MasterKey,
    /// Keys that may still be named by records not yet re-wrapped.
    previous: Vec<MasterKey>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("current", &self.current_kid())
            .finish_non_exhaustive()
    }
}

impl Vault {
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Self {
        Self {
            keys: RwLock::new(Arc::new(Keys { current, previous })),
            key_file: None,
            loaded: std::sync::Mutex::new(None),
        }
    }

    /// The master key from `PUSHRAIL_MASTER_KEY`, or for the embedded default a key file in the
    /// data dir, created with mode 0600 on first start. `PUSHRAIL_MASTER_KEY_PREVIOUS`
    /// (comma-separated) names keys still needed while a rotation is under way.
    pub fn from_env(data_dir: &Path, embedded: bool) -> anyhow::Result<Self> {
        let previous = match std::env::var("PUSHRAIL_MASTER_KEY_PREVIOUS") {
            Ok(list) => list
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(MasterKey::from_base64)
                .collect::<anyhow::Result<Vec<_>>>()
                .context("PUSHRAIL_MASTER_KEY_PREVIOUS")?,
            Err(_) => Vec::new(),
        };
        if let Ok(text) = std::env::var("PUSHRAIL_MASTER_KEY") {
            let current = MasterKey::from_base64(&text).context("PUSHRAIL_MASTER_KEY")?;
            return Ok(Self::new(current, previous));
        }
        if !embedded {
            bail!("PUSHRAIL_MASTER_KEY must be set when using PostgreSQL");
        }
        let path = data_dir.join(KEY_FILE);
        let (current, mut older) = load_or_create_key_file(&path)?;
        older.extend(previous);
        let vault = Self {
            key_file: Some(path),
            ..Self::new(current, older)
        };
        *vault.loaded.lock().expect("vault lock") = vault.key_file_mtime();
        Ok(vault)
    }

    fn key_file_mtime(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(self.key_file.as_ref()?)
            .and_then(|m| m.modified())
            .ok()
    }

    /// Re-reads the key file when another process (`keys rotate`) replaced it.
    fn refresh(&self) {
        let mtime = self.key_file_mtime();
        let changed = *self.loaded.lock().expect("vault lock") != mtime;
        if changed {
            self.reload();
        }
    }

    fn keys(&self) -> Arc<Keys> {
        self.keys.read().expect("vault lock").clone()
    }

    fn set_keys(&self, current: MasterKey, previous: Vec<MasterKey>) {
        *self.keys.write().expect("vault lock") = Arc::new(Keys { current, previous });
    }

    pub fn key_file(&self) -> Option<&Path> {
        self.key_file.as_deref()
    }

    pub fn current_kid(&self) -> String {
        self.keys().current.kid.clone()
    }

    /// Re-reads the key file; false when there is none or it could not be read.
    fn reload(&self) -> bool {
        let Some(path) = &self.key_file else {
            return false;
        };
        let mtime = self.key_file_mtime();
        match read_key_file(path) {
            Ok(Some((current, previous))) => {
                self.set_keys(current, previous);
                *self.loaded.lock().expect("vault lock") = mtime;
                tracing::info!(path = %path.display(), "reloaded the master key file");
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::error!(path = %path.display(), "reloading the master key file failed: {error:#}");
                false
            }
        }
    }

    /// Makes `new` the current key, keeping every key this vault had for records not yet
    /// re-wrapped, and writes the key file (newest first) when there is one.
    pub fn promote(&self, new: MasterKey) -> anyhow::Result<()> {
        let old = self.keys();
        let previous: Vec<MasterKey> = std::iter::once(&old.current)
            .chain(&old.previous)
            .map(MasterKey::duplicate)
            .collect();
        if let Some(path) = &self.key_file {
            write_key_file(path, std::iter::once(&new).chain(&previous))?;
        }
        self.set_keys(new, previous);
        *self.loaded.lock().expect("vault lock") = self.key_file_mtime();
        Ok(())
    }

    /// Forgets every key but the current one, once `rewrap` has moved every record onto it.
    pub fn retire_previous(&self) -> anyhow::Result<()> {
        let current = self.keys().current.duplicate();
        if let Some(path) = &self.key_file {
            write_key_file(path, std::iter::once(&current))?;
        }
        self.set_keys(current, Vec::new());
        *self.loaded.lock().expect("vault lock") = self.key_file_mtime();
        Ok(())
    }

    /// A short keyed hash of a secret: equal secrets get equal fingerprints, and without the
    /// master key nobody can test a guess against one.
    pub fn fingerprint(&self, secret: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let keys = self.keys();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(keys.current.fingerprint_key.as_ref())
            .expect("HMAC takes any key length");
        mac.update(secret);
        format!("fp_{}", hex(&mac.finalize().into_bytes()[..6]))
    }

    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Sealed {
        self.refresh();
        let mut data_key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(data_key.as_mut());
        let data_cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(data_key.as_ref()));
        let keys = self.keys();
        Sealed {
            master_kid: keys.current.kid.clone(),
            wrapped_key: seal_with(&keys.current.cipher, &key_aad(context), data_key.as_ref()),
            ciphertext: seal_with(&data_cipher, &data_aad(context), plaintext),
        }
    }

    pub fn open(&self, context: &str, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let data_key = self.unwrap_key(context, sealed)?;
        let data_cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&data_key));
        open_with(&data_cipher, &data_aad(context), &sealed.ciphertext)
    }

    /// Re-wraps the data key under the current master key; the ciphertext is untouched.
    pub fn rewrap(&self, context: &str, sealed: &Sealed) -> Result<Sealed, VaultError> {
        let data_key = self.unwrap_key(context, sealed)?;
        let keys = self.keys();
        Ok(Sealed {
            master_kid: keys.current.kid.clone(),
            wrapped_key: seal_with(&keys.current.cipher, &key_aad(context), &data_key),
            ciphertext: sealed.ciphertext.clone(),
        })
    }

    fn unwrap_key(&self, context: &str, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let find = |keys: &Keys| -> Option<Aes256Gcm> {
            std::iter::once(&keys.current)
                .chain(&keys.previous)
                .find(|k| k.kid == sealed.master_kid)
                .map(|k| k.cipher.clone())
        };
        let cipher = find(&self.keys())
            .or_else(|| {
                if self.reload() {
                    find(&self.keys())
                } else {
                    None
                }
            })
            .ok_or_else(|| VaultError::UnknownMasterKey(sealed.master_kid.clone()))?;
        let key = open_with(&cipher, &key_aad(context), &sealed.wrapped_key)?;
        if key.len() != 32 {
            return Err(VaultError::Mismatch);
        }
        Ok(key)
    }
}

fn key_aad(context: &str) -> Vec<u8> {
    format!("pushrail/v1/data-key/{context}").into_bytes()
}

fn data_aad(context: &str) -> Vec<u8> {
    format!("pushrail/v1/secret/{context}").into_bytes()
}

/// `nonce || ciphertext+tag`, with a fresh random nonce per call.
fn seal_with(cipher: &Aes256Gcm, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption of an in-memory buffer does not fail");
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

fn open_with(
    cipher: &Aes256Gcm,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    if sealed.len() < NONCE_LEN {
        return Err(VaultError::Mismatch);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
        .map(Zeroizing::new)
        .map_err(|_| VaultError::Mismatch)
}

/// The key file holds one base64 key per line, the current key first; the others are kept only
/// while `keys rotate` moves records off them.
fn read_key_file(path: &Path) -> anyhow::Result<Option<(MasterKey, Vec<MasterKey>)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => Zeroizing::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut keys = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(MasterKey::from_base64)
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(|| format!("reading {}", path.display()))?;
    if keys.is_empty() {
        bail!("{} holds no key", path.display());
    }
    let current = keys.remove(0);
    Ok(Some((current, keys)))
}

fn load_or_create_key_file(path: &Path) -> anyhow::Result<(MasterKey, Vec<MasterKey>)> {
    if let Some(keys) = read_key_file(path)? {
        return Ok(keys);
    }
    let key = MasterKey::generate();
    write_key_file(path, std::iter::once(&key))?;
    tracing::warn!(
        path = %path.display(),
        "generated a master key file for the embedded default; production must set PUSHRAIL_MASTER_KEY"
    );
    Ok((key, Vec::new()))
}

/// Writes the key file with mode 0600, atomically (a private temporary file renamed into place).
fn write_key_file<'a>(
    path: &Path,
    keys: impl Iterator<Item = &'a MasterKey>,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut contents = Zeroizing::new(String::new());
    for key in keys {
        contents.push_str(&STANDARD.encode(key.bytes.as_ref()));
        contents.push('\n');
    }
    let temp = path.with_extension(format!("{}.tmp", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .with_context(|| format!("creating {}", temp.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Secret text that never prints: `Debug` and `Display` redact it and it is wiped on drop.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        Vault::new(MasterKey::from_bytes(&[7u8; 32]).unwrap(), Vec::new())
    }

    #[test]
    fn round_trips_in_its_context_only() {
        let vault = vault();
        let sealed = vault.seal("credential:t1:s1:c1", b"hunter2");
        assert_eq!(
            vault
                .open("credential:t1:s1:c1", &sealed)
                .unwrap()
                .as_slice(),
            b"hunter2"
        );
        assert!(matches!(
            vault.open("credential:t1:s2:c1", &sealed),
            Err(VaultError::Mismatch)
        ));
        assert!(!sealed.ciphertext.windows(7).any(|w| w == b"hunter2"));
    }

    #[test]
    fn nonces_are_fresh() {
        let vault = vault();
        let a = vault.seal("c", b"same");
        let b = vault.seal("c", b"same");
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_ne!(a.wrapped_key, b.wrapped_key);
    }

    #[test]
    fn rewrap_moves_to_the_new_master_key() {
        let old = MasterKey::from_bytes(&[1u8; 32]).unwrap();
        let sealed = Vault::new(old, Vec::new()).seal("c", b"secret");
        let rotating = Vault::new(
            MasterKey::from_bytes(&[2u8; 32]).unwrap(),
            vec![MasterKey::from_bytes(&[1u8; 32]).unwrap()],
        );
        let rewrapped = rotating.rewrap("c", &sealed).unwrap();
        assert_eq!(rewrapped.master_kid, rotating.current_kid());
        let after = Vault::new(MasterKey::from_bytes(&[2u8; 32]).unwrap(), Vec::new());
        assert_eq!(after.open("c", &rewrapped).unwrap().as_slice(), b"secret");
        assert!(matches!(
            after.open("c", &sealed),
            Err(VaultError::UnknownMasterKey(_))
        ));
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = SecretString::new("hunter2".into());
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
    }
}
