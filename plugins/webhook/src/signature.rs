//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub struct Signer {
    key: Vec<u8>,
}

#[derive(Debug)]
pub enum SignerError {
    Format,
}

impl Signer {
    /// `secret` is `whsec_` followed by the base64 key, as Standard Webhooks defines it.
    pub fn new(secret: &str) -> Result<Self, SignerError> {
        let encoded = secret.strip_prefix("whsec_").ok_or(SignerError::Format)?;
        let key = STANDARD.decode(encoded).map_err(|_| SignerError::Format)?;
        if key.is_empty() {
            return Err(SignerError::Format);
        }
        Ok(Self { key })
    }

    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        // The key is this sub-tenant's secret; leave nothing behind in linear memory.
        self.key.iter_mut().for_each(|b| *b = 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification.
    #[test]
    fn matches_the_specification_example() {
        let signer = Signer::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signer.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn refuses_secrets_without_prefix() {
        assert!(Signer::new("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
    }
}
