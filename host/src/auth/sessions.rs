//! Session tokens: EdDSA-signed JWTs carrying only the sub-tenant and the session id.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::store::{SigningKeyRow, Store};
use crate::vault::Vault;
use crate::{clock, ids};

pub const ISSUER: &str = "pushrail";
/// Tolerated clock skew between the host that minted a token and the one checking it.
const LEEWAY_SECS: u64 = 5;
/// The longest session a token can carry (API.md).
pub const MAX_TTL_SECS: i64 = 3600;
/// How often an unknown `kid` may trigger a reload of the keys (another host rotated them).
const RELOAD_INTERVAL_MS: i64 = 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("the session token has expired")]
    Expired,
    #[error("the session token is not valid yet")]
    NotYetValid,
    #[error("the session token is signed with an unknown key")]
    UnknownKey,
    #[error("the session token is malformed or its signature does not verify")]
    Invalid,
}

impl SessionError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::UnknownKey => "unknown_signing_key",
            Self::Invalid => "invalid_token",
        }
    }
}

struct Key {
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    public: [u8; 32],
}

/// Signs with the newest key and verifies with every key still published, so a rotation does
/// not break tokens minted just before it.
pub struct SessionSigner {
    store: Store,
    vault: Arc<Vault>,
    keys: RwLock<(String, HashMap<String, Arc<Key>>)>,
    last_reload: std::sync::atomic::AtomicI64,
}

impl SessionSigner {
    pub async fn load(store: Store, vault: Arc<Vault>) -> anyhow::Result<Self> {
        let signer = Self {
            store,
            vault,
            keys: RwLock::new((String::new(), HashMap::new())),
            last_reload: std::sync::atomic::AtomicI64::new(0),
        };
        if signer.store.signing_keys().await?.is_empty() {
            signer.rotate().await?;
        } else {
            signer.reload().await?;
        }
        Ok(signer)
    }

    /// Adds a new signing key; older keys stay published for verification.
    pub async fn rotate(&self) -> anyhow::Result<String> {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        let kid = ids::new("sk");
        let der = signing.to_pkcs8_der().context("encoding the signing key")?;
        let sealed = self.vault.seal(&context(&kid), der.as_bytes());
        let row = SigningKeyRow {
            kid: kid.clone(),
            private_key: encode_sealed(&sealed),
            public_key: signing.verifying_key().to_bytes().to_vec(),
            created_at: clock::now_ms(),
            retired_at: None,
        };
        self.store.insert_signing_key(&row).await?;
        self.reload().await?;
        Ok(kid)
    }

    /// Re-wraps every signing key's private half under the vault's current master key.
    pub async fn rewrap_all(&self) -> anyhow::Result<usize> {
        let mut n = 0;
        for row in self.store.signing_keys().await? {
            let sealed = decode_sealed(&row.private_key).context("sealed signing key")?;
            if sealed.master_kid == self.vault.current_kid() {
                continue;
            }
            let rewrapped = self
                .vault
                .rewrap(&context(&row.kid), &sealed)
                .context("re-wrapping a signing key")?;
            self.store
                .update_signing_private_key(&row.kid, &encode_sealed(&rewrapped))
                .await?;
            n += 1;
        }
        Ok(n)
    }

    pub async fn reload(&self) -> anyhow::Result<()> {
        let rows = self.store.signing_keys().await?;
        let mut keys = HashMap::new();
        let mut newest = String::new();
        // A retired key verifies until every token it signed has expired, then it is dropped.
        let verifiable_since = clock::now_ms() - (MAX_TTL_SECS + LEEWAY_SECS as i64) * 1000;
        for row in rows {
            if row.retired_at.is_some_and(|at| at < verifiable_since) {
                continue;
            }
            let public: [u8; 32] = row
                .public_key
                .as_slice()
                .try_into()
                .context("public key length")?;
            let encoding = if row.retired_at.is_none() {
                let sealed = decode_sealed(&row.private_key).context("sealed signing key")?;
                let der = self
                    .vault
                    .open(&context(&row.kid), &sealed)
                    .context("opening signing key")?;
                Some(EncodingKey::from_ed_der(&Zeroizing::new(der.to_vec())))
            } else {
                None
            };
            if newest.is_empty() && encoding.is_some() {
                newest = row.kid.clone();
            }
            let decoding = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(public))?;
            keys.insert(
                row.kid,
                Arc::new(Key {
                    encoding,
                    decoding,
                    public,
                }),
            );
        }
        *self.keys.write().expect("signing keys lock") = (newest, keys);
        Ok(())
    }

    pub fn mint(
        &self,
        sub_tenant_id: &str,
        session_id: &str,
        ttl_secs: i64,
    ) -> anyhow::Result<(String, i64)> {
        let (kid, key) = {
            let keys = self.keys.read().expect("signing keys lock");
            let key = keys.1.get(&keys.0).cloned().context("no signing key")?;
            (keys.0.clone(), key)
        };
        let now = clock::now_ms() / 1000;
        let claims = Claims {
            iss: ISSUER.to_owned(),
            sub: sub_tenant_id.to_owned(),
            sid: session_id.to_owned(),
            iat: now,
            exp: now + ttl_secs,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid);
        let encoding = key.encoding.as_ref().context("signing key is retired")?;
        let token = jsonwebtoken::encode(&header, &claims, encoding)?;
        Ok((token, claims.exp))
    }

    /// Checks signature, algorithm, issuer and times. Revocation is the caller's next step.
    pub async fn verify(&self, token: &str) -> Result<Claims, SessionError> {
        match self.verify_with_loaded(token) {
            Err(SessionError::UnknownKey) => {
                use std::sync::atomic::Ordering;
                let now = clock::now_ms();
                let last = self.last_reload.load(Ordering::Relaxed);
                if now - last < RELOAD_INTERVAL_MS
                    || self
                        .last_reload
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_err()
                {
                    return Err(SessionError::UnknownKey);
                }
                if let Err(error) = self.reload().await {
                    tracing::error!("reloading signing keys failed: {error:#}");
                }
                self.verify_with_loaded(token)
            }
            other => other,
        }
    }

    fn verify_with_loaded(&self, token: &str) -> Result<Claims, SessionError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| SessionError::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(SessionError::Invalid);
        }
        let kid = header.kid.ok_or(SessionError::UnknownKey)?;
        let key = self
            .keys
            .read()
            .expect("signing keys lock")
            .1
            .get(&kid)
            .cloned()
            .ok_or(SessionError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = LEEWAY_SECS;
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => SessionError::Expired,
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => SessionError::NotYetValid,
                _ => SessionError::Invalid,
            },
        )?;
        if data.claims.iat > clock::now_ms() / 1000 + LEEWAY_SECS as i64 {
            return Err(SessionError::NotYetValid);
        }
        Ok(data.claims)
    }

    pub fn jwks(&self) -> serde_json::Value {
        let keys = self.keys.read().expect("signing keys lock");
        let list: Vec<_> = keys
            .1
            .iter()
            .map(|(kid, key)| {
                serde_json::json!({
                    "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": kid, "x": URL_SAFE_NO_PAD.encode(key.public),
                })
            })
            .collect();
        serde_json::json!({ "keys": list })
    }
}

fn context(kid: &str) -> String {
    format!("signing-key:{kid}")
}

/// Signing keys live in one column, as a small JSON document of the sealed parts.
fn encode_sealed(sealed: &crate::vault::Sealed) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "kid": sealed.master_kid,
        "key": URL_SAFE_NO_PAD.encode(&sealed.wrapped_key),
        "ct": URL_SAFE_NO_PAD.encode(&sealed.ciphertext),
    }))
    .expect("serializing a JSON object")
}

fn decode_sealed(bytes: &[u8]) -> anyhow::Result<crate::vault::Sealed> {
    let value: serde_json::Value = serde_json::from_slice(bytes)?;
    let field = |name: &str| {
        value[name]
            .as_str()
            .map(str::to_owned)
            .context("sealed key field")
    };
    Ok(crate::vault::Sealed {
        master_kid: field("kid")?,
        wrapped_key: URL_SAFE_NO_PAD.decode(field("key")?)?,
        ciphertext: URL_SAFE_NO_PAD.decode(field("ct")?)?,
    })
}
