//! Reading the secret of a [`Credential`].

use serde::de::DeserializeOwned;

use crate::{Credential, Failure};

impl Credential {
    /// The secret, deserialized into the shape of its kind (for `basic`, a struct with `username`
    /// and `password`). The host checked it against the kind's schema when it was stored, so a
    /// mismatch means the plugin was handed a kind it does not expect: a permanent failure.
    pub fn secret<T: DeserializeOwned>(&self) -> Result<T, Failure> {
        serde_json::from_str(&self.secret).map_err(|e| {
            // serde's messages may quote a value; only the "missing field" kind is safe to keep.
            let detail = e.to_string();
            let detail = match detail.split(" at line").next() {
                Some(missing) if missing.starts_with("missing field") => format!(": {missing}"),
                _ => String::new(),
            };
            Failure::permanent(format!(
                "the {} credential does not have the expected fields{detail}",
                self.kind
            ))
        })
    }
}

/// The secret shapes of the host's credential kinds, for [`Credential::secret`]. Their `Debug`
/// is not derived: a secret must not end up in a log line by accident.
pub mod kinds {
    use serde::Deserialize;

    /// `basic`, `sasl_plain`: a user name and a password.
    #[derive(Deserialize)]
    pub struct Basic {
        pub username: String,
        pub password: String,
    }

    /// `bearer`, `nats_token`: one token.
    #[derive(Deserialize)]
    pub struct Token {
        pub token: String,
    }

    /// `secret`: one opaque value.
    #[derive(Deserialize)]
    pub struct Secret {
        pub value: String,
    }

    /// `postgres_dsn`: a connection string.
    #[derive(Deserialize)]
    pub struct Dsn {
        pub dsn: String,
    }
}
