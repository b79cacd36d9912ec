//! Envelope encryption of customer secrets.
//!
//! Each secret gets its own data key; the secret is sealed with AES-256-GCM under the data key and
//! the data key is sealed under the master key. Both seals bind a context string (tenant,
//! sub-tenant, record id) as associated data, so a ciphertext copied into another row or another
//! sub-tenant fails to open. Every sealed record names its master key id, which is what lets
//! `keys rotate` re-wrap data keys under a new master key.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use anyhow::{bail, Context as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

const NONCE_LEN: usize = 12;
const KEY_FILE: &str = "master.key";

pub struct MasterKey {
    kid: String,
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
        Ok(Self {
            kid,
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
    current: MasterKey,
    /// Keys that may still be named by records not yet re-wrapped.
    previous: Vec<MasterKey>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("current", &self.current.kid)
            .finish_non_exhaustive()
    }
}

impl Vault {
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Self {
        Self { current, previous }
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
        let current = load_or_create_key_file(&data_dir.join(KEY_FILE))?;
        Ok(Self::new(current, previous))
    }

    pub fn current_kid(&self) -> &str {
        &self.current.kid
    }

    /// A short keyed hash of a secret: equal secrets get equal fingerprints, and without the
    /// master key nobody can test a guess against one.
    pub fn fingerprint(&self, secret: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.current.fingerprint_key.as_ref())
            .expect("any key length");
        mac.update(secret);
        format!("fp_{}", hex(&mac.finalize().into_bytes()[..6]))
    }

    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Sealed {
        let mut data_key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(data_key.as_mut());
        let data_cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(data_key.as_ref()));
        Sealed {
            master_kid: self.current.kid.clone(),
            wrapped_key: seal_with(&self.current.cipher, &key_aad(context), data_key.as_ref()),
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
        Ok(Sealed {
            master_kid: self.current.kid.clone(),
            wrapped_key: seal_with(&self.current.cipher, &key_aad(context), &data_key),
            ciphertext: sealed.ciphertext.clone(),
        })
    }

    fn unwrap_key(&self, context: &str, sealed: &Sealed) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let master = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.kid == sealed.master_kid)
            .ok_or_else(|| VaultError::UnknownMasterKey(sealed.master_kid.clone()))?;
        let key = open_with(&master.cipher, &key_aad(context), &sealed.wrapped_key)?;
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

fn load_or_create_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let text = Zeroizing::new(text);
        return MasterKey::from_base64(&text)
            .with_context(|| format!("reading {}", path.display()));
    }
    let mut bytes = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(bytes.as_mut());
    let mut encoded = STANDARD.encode(bytes.as_ref());
    write_private(path, encoded.as_bytes())?;
    encoded.zeroize();
    tracing::warn!(
        path = %path.display(),
        "generated a master key file for the embedded default; production must set PUSHRAIL_MASTER_KEY"
    );
    MasterKey::from_bytes(bytes.as_ref())
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
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
