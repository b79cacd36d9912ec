//! What the Google types' tests share: `peer_gcp.py serve`, Google's token endpoint (it verifies
//! the RS256 assertion of the JWT-bearer flow with the public half of a key pair made for the
//! test, and its iss, aud, scope and times) and a gate in front of the API that lets through
//! only tokens it issued; behind it an emulator, or the script's own BigQuery fake.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::common::workspace;
use crate::support::{free_port, python, unique, Peer};

pub fn python_bin() -> String {
    std::env::var("PUSHRAIL_TEST_PYTHON").expect("PUSHRAIL_TEST_PYTHON is unset")
}

/// The token endpoint and API gate, and the service account key the token endpoint knows.
pub struct Gate {
    _peer: Peer,
    pub port: u16,
    /// The key file of the service account the token endpoint knows.
    pub key: Value,
    pub dir: PathBuf,
}

impl Gate {
    /// A gate in front of `upstream` (an emulator's port, or `bigquery` for the fake) that issues
    /// tokens for `scope` only.
    pub fn start(upstream: &str, scope: &str) -> Gate {
        let port = free_port();
        let dir = std::env::temp_dir().join(unique("gcp-keys"));
        std::fs::create_dir_all(&dir).unwrap();
        let key = new_key(port, &dir, "known");
        let mut command = Command::new(python_bin());
        command
            .arg(workspace().join("host/tests/peers/peer_gcp.py"))
            .args([
                "serve",
                &port.to_string(),
                upstream,
                dir.join("known.pub.pem").to_str().unwrap(),
                key["client_email"].as_str().unwrap(),
                key["private_key_id"].as_str().unwrap(),
                scope,
            ]);
        let mut peer = Peer::spawn("peer_gcp", command);
        peer.wait_for_port(port);
        Gate {
            _peer: peer,
            port,
            key,
            dir,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn credential(&self) -> Option<(&'static str, Value)> {
        Some(("gcp_service_account", self.key.clone()))
    }

    /// Another key pair for the same service account (email and token URI): one the token
    /// endpoint does not know.
    pub fn unknown_key(&self) -> Value {
        let mut wrong = new_key(self.port, &self.dir, "unknown");
        wrong["client_email"] = self.key["client_email"].clone();
        wrong
    }

    pub async fn control(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.endpoint());
        let client = reqwest::Client::new();
        let request = match (method, body) {
            ("POST", Some(body)) => client.post(url).json(&body),
            ("POST", None) => client.post(url).body(""),
            _ => client.get(url),
        };
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    pub async fn stats(&self) -> Value {
        self.control("GET", "/control/stats", None).await
    }

    /// The statuses the gate answered API writes with (uploads, publishes, insertAlls), in
    /// order.
    pub async fn write_statuses(&self) -> Vec<i64> {
        let stats = self.stats().await;
        stats["api"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                let path = r["path"].as_str().unwrap();
                path.starts_with("/upload/")
                    || path.ends_with(":publish")
                    || path.ends_with("/insertAll")
            })
            .map(|r| r["status"].as_i64().unwrap())
            .collect()
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh service account key file whose token_uri is the gate's token endpoint; its public half
/// is written to `dir/{name}.pub.pem`.
fn new_key(gate_port: u16, dir: &Path, name: &str) -> Value {
    python(
        "peer_gcp.py",
        &[
            "new-key",
            &format!("http://127.0.0.1:{gate_port}/token"),
            dir.to_str().unwrap(),
            name,
        ],
    )
}

/// What every Google type's delivery log must not hold: the key file's private key, whole or any
/// line of it.
pub fn assert_no_key_material(logged: &str, key: &Value) {
    assert!(!logged.contains("PRIVATE KEY"), "no key material: {logged}");
    let key_line = key["private_key"].as_str().unwrap().lines().nth(1).unwrap();
    assert!(!logged.contains(key_line), "no key material: {logged}");
}

/// The refusal the token endpoint records for a key it does not know.
pub fn invalid_signature() -> Value {
    json!({ "error": "invalid_grant", "error_description": "Invalid JWT Signature." })
}
