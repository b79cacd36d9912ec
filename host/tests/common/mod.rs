//! Test harness: the real `pushrail` binary on a loopback port, a scriptable HTTP receiver, and
//! small helpers around the public API.
#![allow(dead_code)]

pub mod receiver;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[allow(unused_imports, reason = "not every test binary uses the receiver")]
pub use receiver::Receiver;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pushrail")
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Plugin components, built by `scripts/test` before the suite runs.
pub fn plugins_dir() -> PathBuf {
    let dir = std::env::var_os("PUSHRAIL_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("plugins/dist"));
    assert!(
        dir.join("webhook.wasm").exists(),
        "no plugins in {}: run the suite with scripts/test, which builds them",
        dir.display()
    );
    dir
}

/// Plugins only tests load, built by `scripts/test`.
pub fn test_plugins_dir() -> PathBuf {
    let dir = std::env::var_os("PUSHRAIL_TEST_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("plugins/test-dist"));
    assert!(
        dir.join("hostile.wasm").exists(),
        "no test plugins in {}: run the suite with scripts/test",
        dir.display()
    );
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `pushrail serve` process with its own data dir.
pub struct Host {
    child: Option<Child>,
    pub base: String,
    pub data_dir: PathBuf,
    extra: Vec<String>,
    port: u16,
    /// The PostgreSQL database of this test (`PUSHRAIL_TEST_STORE=postgres`), dropped with the
    /// host that created it; `None` on the embedded SQLite default.
    pub database: Option<TestDatabase>,
    /// Given to the host as PUSHRAIL_MASTER_KEY (PostgreSQL needs one).
    pub master_key: Option<String>,
    _temp: Option<tempfile::TempDir>,
}

/// One database per test, so runs and parallel tests never collide.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    owner: bool,
}

const PG: &str = "postgres://postgres@127.0.0.1:5432";

pub fn on_postgres() -> bool {
    std::env::var("PUSHRAIL_TEST_STORE").is_ok_and(|s| s == "postgres")
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            sql,
        ])
        .output()
        .expect("running psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestDatabase {
    fn create() -> Self {
        let name = format!("pushrail_t_{}", uuid::Uuid::new_v4().simple());
        psql(&format!("CREATE DATABASE {name}"));
        Self {
            url: format!("{PG}/{name}"),
            name,
            owner: true,
        }
    }

    fn share(&self) -> Self {
        Self {
            name: self.name.clone(),
            url: self.url.clone(),
            owner: false,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.owner {
            let _ = std::panic::catch_unwind(|| {
                psql(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
            });
        }
    }
}

fn random_master_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}

impl Host {
    /// A host in a fresh data dir with loopback egress open (the receivers live there).
    pub async fn start(extra: &[&str]) -> Host {
        let temp = tempfile::tempdir().unwrap();
        let data_dir = temp.path().to_owned();
        let mut args = vec!["--allow-egress".to_owned(), "127.0.0.0/8".to_owned()];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Self::start_in(data_dir, Some(temp), args).await
    }

    /// A host with exactly these serve arguments (no egress allowlist unless given).
    pub async fn start_with(args: &[&str]) -> Host {
        let temp = tempfile::tempdir().unwrap();
        let data_dir = temp.path().to_owned();
        Self::start_in(
            data_dir,
            Some(temp),
            args.iter().map(|s| (*s).to_owned()).collect(),
        )
        .await
    }

    /// A host whose plugins dir also holds the test-only plugins (hostile, template).
    pub async fn start_with_test_plugins(args: &[&str]) -> Host {
        let temp = tempfile::tempdir().unwrap();
        let plugins = temp.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::copy(
            plugins_dir().join("webhook.wasm"),
            plugins.join("webhook.wasm"),
        )
        .unwrap();
        for name in ["hostile.wasm", "template.wasm", "legacy.wasm"] {
            std::fs::copy(test_plugins_dir().join(name), plugins.join(name)).unwrap();
        }
        let mut all: Vec<String> = vec!["--plugins-dir".into(), plugins.display().to_string()];
        all.extend(args.iter().map(|s| (*s).to_owned()));
        let data_dir = temp.path().join("data");
        Self::start_in(data_dir, Some(temp), all).await
    }

    async fn start_in(
        data_dir: PathBuf,
        temp: Option<tempfile::TempDir>,
        extra: Vec<String>,
    ) -> Host {
        Self::start_on(on_postgres(), data_dir, temp, extra).await
    }

    /// A host on PostgreSQL whatever the suite's store (multi-host tests need it).
    pub async fn start_postgres(extra: &[&str]) -> Host {
        let temp = tempfile::tempdir().unwrap();
        let data_dir = temp.path().to_owned();
        let mut args = vec!["--allow-egress".to_owned(), "127.0.0.0/8".to_owned()];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Self::start_on(true, data_dir, Some(temp), args).await
    }

    async fn start_on(
        postgres: bool,
        data_dir: PathBuf,
        temp: Option<tempfile::TempDir>,
        extra: Vec<String>,
    ) -> Host {
        let (database, master_key) = if postgres {
            (Some(TestDatabase::create()), Some(random_master_key()))
        } else {
            (None, None)
        };
        let mut host = Host {
            child: None,
            base: String::new(),
            data_dir,
            extra,
            port: free_port(),
            database,
            master_key,
            _temp: temp,
        };
        host.spawn().await;
        host
    }

    /// A second host on the same PostgreSQL database (and master key), with its own data dir.
    pub async fn join(other: &Host, extra: &[&str]) -> Host {
        let temp = tempfile::tempdir().unwrap();
        let mut host = Host {
            child: None,
            base: String::new(),
            data_dir: temp.path().to_owned(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            port: free_port(),
            database: Some(
                other
                    .database
                    .as_ref()
                    .expect("join needs PostgreSQL")
                    .share(),
            ),
            master_key: other.master_key.clone(),
            _temp: Some(temp),
        };
        host.spawn().await;
        host
    }

    /// A `pushrail` command on this host's store (data dir, database, master key).
    pub fn command(&self) -> Command {
        let mut command = Command::new(bin());
        command.arg("--data-dir").arg(&self.data_dir);
        if let Some(database) = &self.database {
            command.arg("--database-url").arg(&database.url);
        }
        match &self.master_key {
            Some(key) => command.env("PUSHRAIL_MASTER_KEY", key),
            None => command.env_remove("PUSHRAIL_MASTER_KEY"),
        };
        command
    }

    async fn spawn(&mut self) {
        std::fs::create_dir_all(&self.data_dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let cache = std::env::temp_dir().join("pushrail-test-plugin-cache");
        let child = self
            .command()
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(if self.extra.iter().any(|a| a == "--plugins-dir") {
                Vec::new()
            } else {
                vec![
                    "--plugins-dir".to_owned(),
                    plugins_dir().display().to_string(),
                ]
            })
            .arg("--cache-dir")
            .arg(cache)
            .args(&self.extra)
            .env(
                "PUSHRAIL_LOG",
                std::env::var("PUSHRAIL_TEST_LOG").unwrap_or_else(|_| "debug".into()),
            )
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawning pushrail");
        self.child = Some(child);
        self.base = format!("http://127.0.0.1:{}", self.port);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("pushrail exited with {status}; log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "pushrail did not come up; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join("host.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// SIGKILL: no shutdown code runs, as in a crash.
    /// Sends SIGTERM and waits for the process to exit (up to `limit`); its exit status and how
    /// long it took, or `None` if it had not exited by then (it is killed).
    /// (Async: the test's own receivers run on this runtime and must keep answering meanwhile.)
    pub async fn terminate(
        &mut self,
        limit: Duration,
    ) -> Option<(std::process::ExitStatus, Duration)> {
        let mut child = self.child.take()?;
        let started = std::time::Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        while started.elapsed() < limit {
            if let Some(status) = child.try_wait().unwrap() {
                return Some((status, started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// Creates a tenant with the CLI, as an operator would.
    pub fn create_tenant(&self, name: &str) -> Tenant {
        let out = self
            .command()
            .args(["tenant", "create", "--name", name])
            .env("PUSHRAIL_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tenant create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value: Value = serde_json::from_slice(&out.stdout).unwrap();
        Tenant {
            id: value["tenant_id"].as_str().unwrap().to_owned(),
            api_key: value["api_key"].as_str().unwrap().to_owned(),
            base: self.base.clone(),
            client: reqwest::Client::new(),
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A vendor, speaking the vendor API with its API key.
pub struct Tenant {
    pub id: String,
    pub api_key: String,
    pub base: String,
    client: reqwest::Client,
}

/// A status and a JSON body (or `Null`).
pub type Answer = (u16, Value);

pub async fn call(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    token: &str,
    body: Option<&Value>,
) -> Answer {
    let mut request = client
        .request(method.parse().unwrap(), url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

impl Tenant {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        call(
            &self.client,
            method,
            &format!("{}{path}", self.base),
            &self.api_key,
            body.as_ref(),
        )
        .await
    }

    pub async fn session(&self, external_id: &str) -> Session {
        let (status, body) = self
            .call(
                "POST",
                "/v1/sessions",
                Some(json!({ "external_id": external_id })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        Session {
            token: body["token"].as_str().unwrap().to_owned(),
            id: body["session_id"].as_str().unwrap().to_owned(),
            sub_tenant_id: body["sub_tenant_id"].as_str().unwrap().to_owned(),
            base: self.base.clone(),
            client: self.client.clone(),
        }
    }

    pub async fn publish(&self, external_id: &str, event_type: &str, payload: Value) -> Value {
        let (status, body) = self
            .call(
                "POST",
                "/v1/events",
                Some(json!({ "external_id": external_id, "type": event_type, "payload": payload })),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        body
    }
}

/// A sub-tenant, speaking the embed API with a session token.
pub struct Session {
    pub token: String,
    pub id: String,
    pub sub_tenant_id: String,
    pub base: String,
    client: reqwest::Client,
}

impl Session {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        call(
            &self.client,
            method,
            &format!("{}{path}", self.base),
            &self.token,
            body.as_ref(),
        )
        .await
    }

    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.call("POST", path, Some(body)).await;
        assert_eq!(status, 201, "POST {path}: {answer}");
        answer
    }

    /// A webhook destination to `url` signed with `secret`.
    pub async fn webhook(&self, url: &str, secret: &str) -> Value {
        let credential = self
            .create("/embed/v1/credentials", json!({ "name": "signing", "kind": "webhook_secret", "secret": { "secret": secret } }))
            .await;
        self.create(
            "/embed/v1/destinations",
            json!({ "type": "webhook", "name": "hook", "config": { "url": url }, "credential_id": credential["id"] }),
        )
        .await
    }

    pub async fn deliveries(&self, query: &str) -> Vec<Value> {
        let (status, body) = self
            .call("GET", &format!("/embed/v1/deliveries{query}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().unwrap().clone()
    }

    pub async fn delivery(&self, id: &str) -> Value {
        let (status, body) = self
            .call("GET", &format!("/embed/v1/deliveries/{id}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Verifies recorded requests with the `standardwebhooks` package from PyPI, a third-party
/// implementation of the scheme. Returns how many it accepted.
pub fn verify_with_standardwebhooks(secret: &str, requests: &[receiver::Recorded]) -> usize {
    let python = std::env::var("PUSHRAIL_TEST_PYTHON")
        .expect("PUSHRAIL_TEST_PYTHON is unset: run the suite with scripts/test, which installs the verifier");
    let input = json!({
        "secret": secret,
        "requests": requests.iter().map(|r| json!({
            "headers": r.headers.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "body": String::from_utf8_lossy(&r.body),
        })).collect::<Vec<_>>(),
    });
    let mut child = Command::new(python)
        .arg(workspace().join("host/tests/peers/verify_webhooks.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "standardwebhooks refused a request: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The host's SQLite database, opened beside the running host (tests that play an attacker
/// with database access, or inspect what is stored).
pub async fn database(host: &Host) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let url = match &host.database {
        Some(database) => database.url.clone(),
        None => format!("sqlite://{}", host.data_dir.join("pushrail.db").display()),
    };
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap()
}

/// Everything the store holds, as bytes: the SQLite files, or a `pg_dump` of the database.
pub fn stored_bytes(host: &Host) -> Vec<(String, Vec<u8>)> {
    match &host.database {
        Some(database) => {
            let out = Command::new("pg_dump")
                .arg(&database.url)
                .output()
                .expect("running pg_dump");
            assert!(
                out.status.success(),
                "pg_dump: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            vec![("pg_dump".to_owned(), out.stdout)]
        }
        None => ["pushrail.db", "pushrail.db-wal", "pushrail.db-shm"]
            .iter()
            .filter_map(|name| {
                std::fs::read(host.data_dir.join(name))
                    .ok()
                    .map(|b| ((*name).to_owned(), b))
            })
            .collect(),
    }
}
