//! Azure Service Bus authorization: credentials of kind `azure_sas_key` (a shared access policy's
//! name and key) turned into the shared access signature (SAS) tokens the service takes in
//! `Authorization`, as "Service Bus access control with Shared Access Signatures" describes:
//!
//! ```text
//! SharedAccessSignature sr={urlenc(resource_uri)}&sig={urlenc(base64(HMAC-SHA256(key, urlenc(resource_uri) + "\n" + expiry)))}&se={expiry}&skn={key_name}
//! ```
//!
//! The key is used as the UTF-8 bytes of the text the portal shows (it is not base64-decoded),
//! `expiry` is in seconds since the Unix epoch, and the resource URI is the entity's URL
//! (`https://{namespace}.servicebus.windows.net/{entity}`): a token for one queue or topic, not
//! for the namespace. A [`ServiceBusSas`] keeps its token and signs a new one shortly before it
//! expires, so a session signs about once an hour.
//!
//! ```ignore
//! use pushrail_plugin_sdk::azure::ServiceBusSas;
//!
//! let mut sas = ServiceBusSas::from_credential(credential.as_ref(), &format!("{base}/{entity}"))?;
//! let request = http::Request::post(&format!("{base}/{entity}/messages"))?
//!     .header("authorization", sas.token());
//! ```
//!
//! Signed here with the `hmac` and `sha2` crates: no maintained Rust crate signs Service Bus SAS
//! tokens without bringing the whole AMQP client (the one the Azure SDK for Rust has needs a
//! runtime and does not build for wasm32-wasip2), and the token is one HMAC over two lines. The
//! unit tests compare it with a token computed by Microsoft's own Python recipe.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::{Credential, Failure};

/// The credential kind that carries a shared access policy's name and key.
pub const SAS_KEY_KIND: &str = "azure_sas_key";

/// How long a signed token is valid, in seconds.
pub const TOKEN_LIFETIME_SECS: u64 = 3600;
/// A kept token is replaced once it has less than this left, in seconds: a request signed just
/// before the expiry could otherwise arrive after it (or meet a clock a little ahead).
pub const RENEW_BEFORE_SECS: u64 = 300;

/// What `urlenc` leaves as it is: letters, digits and `-_.~`, as Python's `quote_plus` and
/// .NET's `WebUtility.UrlEncode` do for the characters a URL and a base64 signature hold.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Deserialize)]
struct SasKeySecret {
    key_name: String,
    key: String,
}

/// A shared access policy's key signing SAS tokens for one resource URI, and the token it signed
/// last. Its `Debug` shows the policy name and the resource, never the key or a token.
#[derive(Clone)]
pub struct ServiceBusSas {
    key_name: String,
    key: String,
    resource_uri: String,
    /// The kept token and its expiry (seconds since the epoch).
    token: Option<(String, u64)>,
}

impl ServiceBusSas {
    /// A signer for `resource_uri` with the policy `key_name` and its `key` (Primary or
    /// Secondary key, as the portal shows it).
    pub fn new(key_name: &str, key: &str, resource_uri: &str) -> Result<Self, Failure> {
        let key_name = key_name.trim();
        let key = key.trim();
        if key_name.is_empty() || key_name.len() > 256 || key_name.contains(['&', '=', ' ']) {
            return Err(Failure::permanent(
                "the azure_sas_key credential's key_name is not a shared access policy name (e.g. RootManageSharedAccessKey)",
            ));
        }
        if key.is_empty() {
            return Err(Failure::permanent(
                "the azure_sas_key credential's key is empty",
            ));
        }
        Ok(Self {
            key_name: key_name.to_owned(),
            key: key.to_owned(),
            resource_uri: resource_uri.to_owned(),
            token: None,
        })
    }

    /// The signer of the credential a session was opened with (`azure_sas_key`, required). A
    /// connection string pasted whole into `key`
    /// (`Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…`) is taken apart.
    pub fn from_credential(
        credential: Option<&Credential>,
        resource_uri: &str,
    ) -> Result<Self, Failure> {
        let credential = credential.ok_or_else(|| {
            Failure::permanent(format!("an {SAS_KEY_KIND} credential is required"))
        })?;
        if credential.kind != SAS_KEY_KIND {
            return Err(Failure::permanent(format!(
                "credential kind {} is not supported (expected {SAS_KEY_KIND})",
                credential.kind
            )));
        }
        let secret: SasKeySecret = credential.secret()?;
        match ConnectionString::parse(&secret.key) {
            Some(parsed) => {
                let key_name = parsed.key_name.unwrap_or(&secret.key_name);
                let key = parsed.key.ok_or_else(|| {
                    Failure::permanent(
                        "the azure_sas_key credential's key is a connection string without SharedAccessKey",
                    )
                })?;
                Self::new(key_name, key, resource_uri)
            }
            None => Self::new(&secret.key_name, &secret.key, resource_uri),
        }
    }

    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    pub fn resource_uri(&self) -> &str {
        &self.resource_uri
    }

    /// A token valid until `expiry` (seconds since the Unix epoch).
    pub fn sign(&self, expiry: u64) -> String {
        let resource = utf8_percent_encode(&self.resource_uri, ENCODE).to_string();
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(format!("{resource}\n{expiry}").as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        format!(
            "SharedAccessSignature sr={resource}&sig={}&se={expiry}&skn={}",
            utf8_percent_encode(&signature, ENCODE),
            utf8_percent_encode(&self.key_name, ENCODE)
        )
    }

    /// The token to send at `now` (seconds since the epoch): the kept one while it has more
    /// than [`RENEW_BEFORE_SECS`] left, else a new one valid for [`TOKEN_LIFETIME_SECS`].
    pub fn token_at(&mut self, now: u64) -> String {
        match &self.token {
            Some((token, expiry)) if now.saturating_add(RENEW_BEFORE_SECS) < *expiry => {
                token.clone()
            }
            _ => {
                let expiry = now.saturating_add(TOKEN_LIFETIME_SECS);
                let token = self.sign(expiry);
                self.token = Some((token.clone(), expiry));
                token
            }
        }
    }

    /// [`ServiceBusSas::token_at`] the wall clock's time.
    pub fn token(&mut self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.token_at(now)
    }

    /// The expiry of the kept token, if any.
    pub fn expiry(&self) -> Option<u64> {
        self.token.as_ref().map(|(_, expiry)| *expiry)
    }

    /// Drops the kept token (after the service refused it), so the next request signs anew.
    pub fn forget(&mut self) {
        self.token = None;
    }
}

impl fmt::Debug for ServiceBusSas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceBusSas")
            .field("key_name", &self.key_name)
            .field("resource_uri", &self.resource_uri)
            .field("key", &"** redacted **")
            .field("expiry", &self.expiry())
            .finish()
    }
}

/// The parts of a Service Bus connection string as the portal shows it
/// (`Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=…`,
/// optionally `;EntityPath=orders`). Keys are matched without regard to case, as the SDKs do.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ConnectionString<'a> {
    pub endpoint: Option<&'a str>,
    pub key_name: Option<&'a str>,
    pub key: Option<&'a str>,
    pub entity_path: Option<&'a str>,
}

impl<'a> ConnectionString<'a> {
    /// `None` unless `text` looks like a connection string (it has `Endpoint=` or
    /// `SharedAccessKey=` as one of its `;`-separated parts).
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut parsed = Self {
            endpoint: None,
            key_name: None,
            key: None,
            entity_path: None,
        };
        let mut any = false;
        for part in text.trim().split(';') {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let slot = match name.trim().to_ascii_lowercase().as_str() {
                "endpoint" => &mut parsed.endpoint,
                "sharedaccesskeyname" => &mut parsed.key_name,
                "sharedaccesskey" => &mut parsed.key,
                "entitypath" => &mut parsed.entity_path,
                _ => continue,
            };
            if !value.is_empty() {
                *slot = Some(value);
            }
            any = true;
        }
        (any && (parsed.endpoint.is_some() || parsed.key.is_some())).then_some(parsed)
    }

    /// The namespace the endpoint names (`sb://acme.servicebus.windows.net/` → `acme`).
    pub fn namespace(&self) -> Option<&'a str> {
        let host = self.endpoint?.split_once("://")?.1;
        let host = host.split(['/', ':']).next()?;
        host.split_once('.').map(|(namespace, _)| namespace)
    }
}

impl fmt::Debug for ConnectionString<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("endpoint", &self.endpoint)
            .field("key_name", &self.key_name)
            .field("key", &self.key.map(|_| "** redacted **"))
            .field("entity_path", &self.entity_path)
            .finish()
    }
}

/// The JSON Schema of the `azure_sas_key` secret, for [`crate::TypeInfo::credentials`] (the
/// host's own schema of that kind, with help text).
pub fn credential_schema() -> Value {
    json!({
        "title": "Shared access policy",
        "type": "object",
        "required": ["key_name", "key"],
        "description": "Azure portal → your Service Bus namespace (or the queue or topic) → Settings → Shared access policies: a policy with the Send claim, its name and its Primary key. A connection string copied from the same page is split into the two.",
        "properties": {
            "key_name": {
                "type": "string", "title": "Shared access policy name", "minLength": 1,
                "description": "The policy's name, e.g. RootManageSharedAccessKey or a policy with the Send claim on the queue or topic (Azure portal: the namespace or entity → Shared access policies)."
            },
            "key": {
                "type": "string", "title": "Shared access policy key", "minLength": 1,
                "description": "The policy's Primary key (or Secondary key). A whole connection string (Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…) is taken apart."
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_NAME: &str = "RootManageSharedAccessKey";
    const KEY: &str = "Zm9vYmFyYmF6cXV4K3Rlc3Qva2V5PT1wdXNocmFpbA==";
    const RESOURCE: &str = "https://pushrail-test.servicebus.windows.net/orders";
    /// 2026-03-07T10:05:00Z.
    const EXPIRY: u64 = 1_772_877_900;

    /// Computed independently with Microsoft's Python recipe ("Generate a Shared Access
    /// Signature token", Python), `quote_plus` for both the URI and the signature:
    ///
    /// ```python
    /// import base64, hashlib, hmac, urllib.parse
    /// sr = urllib.parse.quote_plus("https://pushrail-test.servicebus.windows.net/orders")
    /// sig = base64.b64encode(hmac.new(KEY.encode("utf-8"), (sr + "\n" + "1772877900").encode(),
    ///                                 hashlib.sha256).digest()).decode()
    /// print("SharedAccessSignature sr={}&sig={}&se={}&skn={}".format(
    ///     sr, urllib.parse.quote_plus(sig), "1772877900", "RootManageSharedAccessKey"))
    /// ```
    const PYTHON_TOKEN: &str = "SharedAccessSignature sr=https%3A%2F%2Fpushrail-test.servicebus.windows.net%2Forders&sig=%2FFTz9r3aNwwB9nFhWTu0C8VRGRibXZss%2FBS%2BFSU0jPI%3D&se=1772877900&skn=RootManageSharedAccessKey";

    fn sas() -> ServiceBusSas {
        ServiceBusSas::new(KEY_NAME, KEY, RESOURCE).unwrap()
    }

    fn credential(secret: Value) -> Credential {
        Credential {
            kind: SAS_KEY_KIND.to_owned(),
            secret: secret.to_string(),
        }
    }

    #[test]
    fn signs_as_microsofts_python_recipe_does() {
        assert_eq!(sas().sign(EXPIRY), PYTHON_TOKEN);
        // Another expiry, key or resource: another signature.
        let sig = |token: &str| token.split('&').nth(1).unwrap().to_owned();
        assert_ne!(sig(&sas().sign(EXPIRY + 1)), sig(PYTHON_TOKEN));
        let other_key = ServiceBusSas::new(KEY_NAME, "d3Jvbmc=", RESOURCE).unwrap();
        assert_ne!(sig(&other_key.sign(EXPIRY)), sig(PYTHON_TOKEN));
        let other_entity = ServiceBusSas::new(
            KEY_NAME,
            KEY,
            "https://pushrail-test.servicebus.windows.net/orders2",
        )
        .unwrap();
        assert_ne!(sig(&other_entity.sign(EXPIRY)), sig(PYTHON_TOKEN));
        // The key is used as text: the same bytes base64-decoded would sign differently.
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(KEY)
            .unwrap();
        let as_text = String::from_utf8(decoded).unwrap();
        let decoded_key = ServiceBusSas::new(KEY_NAME, &as_text, RESOURCE).unwrap();
        assert_ne!(sig(&decoded_key.sign(EXPIRY)), sig(PYTHON_TOKEN));
    }

    #[test]
    fn keeps_the_token_until_shortly_before_it_expires() {
        let mut sas = sas();
        let now = EXPIRY - TOKEN_LIFETIME_SECS;
        let first = sas.token_at(now);
        assert_eq!(first, PYTHON_TOKEN);
        assert_eq!(sas.expiry(), Some(EXPIRY));
        assert_eq!(sas.token_at(now + 1800), first);
        assert_eq!(
            sas.token_at(EXPIRY - RENEW_BEFORE_SECS - 1),
            first,
            "still more than five minutes left"
        );
        let renewed = sas.token_at(EXPIRY - RENEW_BEFORE_SECS);
        assert_ne!(renewed, first);
        assert_eq!(
            sas.expiry(),
            Some(EXPIRY - RENEW_BEFORE_SECS + TOKEN_LIFETIME_SECS)
        );
        // Forgotten after a refusal: signed anew even though the kept one is still valid.
        sas.forget();
        assert_eq!(sas.expiry(), None);
        assert_eq!(sas.token_at(now), first);
        // The wall clock: a token valid for about an hour from now.
        let mut sas = self::sas();
        let token = sas.token();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let se: u64 = token
            .split('&')
            .find_map(|p| p.strip_prefix("se="))
            .unwrap()
            .parse()
            .unwrap();
        assert!((now + TOKEN_LIFETIME_SECS - 5..=now + TOKEN_LIFETIME_SECS + 5).contains(&se));
    }

    #[test]
    fn reads_the_credential() {
        let from =
            |secret: Value| ServiceBusSas::from_credential(Some(&credential(secret)), RESOURCE);
        let sas = from(json!({ "key_name": KEY_NAME, "key": KEY })).unwrap();
        assert_eq!(sas.sign(EXPIRY), PYTHON_TOKEN);
        assert_eq!(sas.key_name(), KEY_NAME);
        assert_eq!(sas.resource_uri(), RESOURCE);
        let text = format!("{sas:?}");
        assert!(text.contains(KEY_NAME), "{text}");
        assert!(!text.contains("Zm9v"), "{text}");
        let mut kept = sas.clone();
        kept.token_at(EXPIRY - 100);
        let text = format!("{kept:?}");
        assert!(!text.contains("sig") && !text.contains("Zm9v"), "{text}");

        // A connection string pasted into `key`: its policy name wins.
        let pasted = from(json!({
            "key_name": "ignored",
            "key": format!("Endpoint=sb://pushrail-test.servicebus.windows.net/;SharedAccessKeyName={KEY_NAME};SharedAccessKey={KEY}")
        }))
        .unwrap();
        assert_eq!(pasted.sign(EXPIRY), PYTHON_TOKEN);
        let without_key = from(json!({
            "key_name": KEY_NAME,
            "key": "Endpoint=sb://pushrail-test.servicebus.windows.net/;SharedAccessKeyName=x"
        }))
        .unwrap_err();
        assert!(without_key.message.contains("without SharedAccessKey"));

        for bad in [
            json!({ "key_name": "", "key": KEY }),
            json!({ "key_name": KEY_NAME, "key": " " }),
            json!({ "key_name": "a&b", "key": KEY }),
            json!({ "key_name": KEY_NAME }),
        ] {
            let failure = from(bad.clone()).unwrap_err();
            assert_eq!(failure.kind, crate::FailureKind::Permanent, "{bad}");
            assert!(!failure.message.contains("Zm9v"));
        }
        assert!(ServiceBusSas::from_credential(None, RESOURCE).is_err());
        let wrong_kind = ServiceBusSas::from_credential(
            Some(&Credential {
                kind: "azure_shared_key".to_owned(),
                secret: json!({ "account_name": "a", "account_key": KEY }).to_string(),
            }),
            RESOURCE,
        )
        .unwrap_err();
        assert!(wrong_kind.message.contains("azure_shared_key"));
    }

    #[test]
    fn parses_connection_strings() {
        let text = "Endpoint=sb://acme-events.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc=;EntityPath=orders";
        let parsed = ConnectionString::parse(text).unwrap();
        assert_eq!(
            parsed.endpoint,
            Some("sb://acme-events.servicebus.windows.net/")
        );
        assert_eq!(parsed.key_name, Some("send"));
        assert_eq!(parsed.key, Some("abc="), "a key may end in =");
        assert_eq!(parsed.entity_path, Some("orders"));
        assert_eq!(parsed.namespace(), Some("acme-events"));
        assert!(!format!("{parsed:?}").contains("abc="));
        let lower =
            ConnectionString::parse("endpoint=sb://x.servicebus.windows.net;sharedaccesskey=k")
                .unwrap();
        assert_eq!(lower.key, Some("k"));
        assert_eq!(lower.namespace(), Some("x"));
        for not in [KEY, "", "abc;def", "SharedAccessKeyName=x"] {
            assert!(ConnectionString::parse(not).is_none(), "{not}");
        }
    }
}
