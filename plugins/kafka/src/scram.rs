//! The client side of SCRAM (RFC 5802) with SHA-256 and SHA-512 (RFC 7677), as Kafka's
//! SASL/SCRAM uses it: no channel binding (`n,,`), no authorization identity.
//!
//! `postgres-protocol`'s SCRAM is tied to PostgreSQL (it sends an empty user name and knows only
//! SHA-256), so this small one exists for Kafka.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Mac, SimpleHmac};
use sha2::digest::core_api::BlockSizeUser;
use sha2::{Digest, Sha256, Sha512};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Sha256,
    Sha512,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => hmac::<Sha256>(key, data),
            Self::Sha512 => hmac::<Sha512>(key, data),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi()` of RFC 5802: PBKDF2 with this HMAC, one block.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut block = salt.to_vec();
        block.extend_from_slice(&1u32.to_be_bytes());
        let mut u = self.hmac(password, &block);
        let mut out = u.clone();
        for _ in 1..iterations {
            u = self.hmac(password, &u);
            out.iter_mut().zip(&u).for_each(|(o, b)| *o ^= b);
        }
        out
    }
}

fn hmac<D: Digest + BlockSizeUser>(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <SimpleHmac<D> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramError(pub String);

impl std::fmt::Display for ScramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Iteration counts above this are refused: a hostile server could make the plugin spin.
const MAX_ITERATIONS: u32 = 1_000_000;

pub struct Client {
    mechanism: Mechanism,
    password: String,
    nonce: String,
    first_bare: String,
    server_signature: Option<Vec<u8>>,
}

impl Client {
    /// `nonce` must be printable ASCII without commas (a random one in practice).
    pub fn new(mechanism: Mechanism, username: &str, password: &str, nonce: &str) -> Self {
        // A user name's "=" and "," are escaped (RFC 5802, section 5.1).
        let name = username.replace('=', "=3D").replace(',', "=2C");
        Self {
            mechanism,
            password: password.to_owned(),
            nonce: nonce.to_owned(),
            first_bare: format!("n={name},r={nonce}"),
            server_signature: None,
        }
    }

    pub fn client_first(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// Answers the server-first message with the client proof.
    pub fn client_final(&mut self, server_first: &str) -> Result<String, ScramError> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = v.parse::<u32>().ok(),
                Some(("e", v)) => return Err(ScramError(format!("the server refused: {v}"))),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(ScramError(
                "the server's first message is incomplete".into(),
            ));
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError("the server's nonce does not extend ours".into()));
        }
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(ScramError(format!(
                "unacceptable iteration count {iterations}"
            )));
        }
        let salt = STANDARD
            .decode(salt)
            .map_err(|_| ScramError("the salt is not base64".into()))?;
        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        // "biws" is base64("n,,"): no channel binding.
        let final_without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{final_without_proof}", self.first_bare);
        let client_signature = m.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key");
        self.server_signature = Some(m.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!(
            "{final_without_proof},p={}",
            STANDARD.encode(proof)
        ))
    }

    /// Checks the server-final message: the server proves it knows the password too.
    pub fn verify_server_final(&self, server_final: &str) -> Result<(), ScramError> {
        if let Some(error) = server_final.strip_prefix("e=") {
            return Err(ScramError(format!("the server refused: {error}")));
        }
        let signature = server_final
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .and_then(|v| STANDARD.decode(v).ok())
            .ok_or_else(|| ScramError("the server's final message has no signature".into()))?;
        match &self.server_signature {
            Some(expected) if *expected == signature => Ok(()),
            _ => Err(ScramError("the server's signature does not match".into())),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // SAFETY: zeroing bytes keeps the String valid UTF-8.
        unsafe { self.password.as_bytes_mut() }
            .iter_mut()
            .for_each(|b| *b = 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SCRAM-SHA-256 example of RFC 7677, section 3.
    #[test]
    fn rfc_7677_example() {
        let mut client = Client::new(Mechanism::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            client.client_final(server_first).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(client
            .verify_server_final("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .is_err());
        assert!(client.verify_server_final("e=invalid-proof").is_err());
    }

    /// SCRAM-SHA-512 with the same inputs; the expected proof and signature were computed with
    /// Python's hashlib/hmac (an independent implementation of the RFC 5802 formulas).
    #[test]
    fn sha_512() {
        let mut client = Client::new(Mechanism::Sha512, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        let server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let last = client.client_final(server_first).unwrap();
        assert_eq!(
            last,
            format!("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p={SHA512_PROOF}")
        );
        client
            .verify_server_final(&format!("v={SHA512_SIGNATURE}"))
            .unwrap();
    }

    const SHA512_PROOF: &str =
        "gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ==";
    const SHA512_SIGNATURE: &str =
        "ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw==";

    #[test]
    fn refuses_bad_server_messages() {
        let mut client = Client::new(Mechanism::Sha256, "a=b,c", "p", "abc");
        assert_eq!(client.client_first(), "n,,n=a=3Db=2Cc,r=abc");
        assert!(
            client.client_final("r=xyz,s=AAAA,i=4096").is_err(),
            "foreign nonce"
        );
        assert!(
            client.client_final("r=abc,s=AAAA,i=4096").is_err(),
            "nonce not extended"
        );
        assert!(client.client_final("r=abcd,s=AAAA,i=0").is_err());
        assert!(client.client_final("r=abcd,s=AAAA,i=99999999").is_err());
        assert!(client.client_final("e=unknown-user").is_err());
    }
}
