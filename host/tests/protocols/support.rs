//! What the protocol tests share: unique names, free ports, peer processes that are killed by
//! PID when dropped, a TCP forwarder, the Python readers, and a host with one destination.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::common::{eventually, workspace, Host, Session, Tenant};

/// Retries about every 300 ms for about 30 s: long enough to bring a peer up between attempts.
pub fn fast_retries() -> Vec<String> {
    let mut schedule = vec!["0s".to_owned()];
    schedule.extend(std::iter::repeat_n("300ms".to_owned(), 100));
    vec!["--retry-schedule".to_owned(), schedule.join(",")]
}

/// A name no other test run uses (queues, streams, tables and topics live on shared servers).
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process started by a test; killed (by its own PID) and reaped when dropped.
pub struct Peer {
    name: String,
    child: Child,
    pub log: PathBuf,
    /// Sent first when dropped (then SIGKILL after 10 s), for servers that clean up on a signal.
    stop_signal: Option<i32>,
}

impl Peer {
    pub fn spawn(name: &str, command: Command) -> Peer {
        Self::spawn_with_stop(name, command, None)
    }

    pub fn spawn_with_stop(name: &str, mut command: Command, stop_signal: Option<i32>) -> Peer {
        let log = std::env::temp_dir().join(format!("{}.log", unique(name)));
        let file = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Peer {
            name: name.to_owned(),
            child,
            log,
            stop_signal,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the peer accepts connections on `port`, or panics with its log.
    pub fn wait_for_port(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited with {status}: {}", self.name, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{} does not listen on {port}: {}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(signal) = self.stop_signal {
            // SAFETY: signalling our own child by its PID; it is not reaped yet, so the PID is
            // still its own.
            unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Forwards 127.0.0.1:`port` to 127.0.0.1:`target`: a shared server appearing on a port where
/// nothing listened. Stops accepting when dropped.
pub struct Forwarder {
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    pub async fn start(port: u16, target: u16) -> Forwarder {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Forwarder { task }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn python_bin() -> String {
    std::env::var("PUSHRAIL_TEST_PYTHON").expect(
        "PUSHRAIL_TEST_PYTHON is unset: run the suite with scripts/test, which installs the clients",
    )
}

/// Runs `host/tests/peers/<script>` with the test venv's Python and returns its JSON output.
pub fn python(script: &str, args: &[&str]) -> Value {
    python_with_env(script, args, &[])
}

/// [`python`] with extra environment variables.
pub fn python_with_env(script: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = Command::new(python_bin())
        .arg(workspace().join("host/tests/peers").join(script))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// moto server, the AWS types' peer, on `port`. With `auth`, the first `free_actions` requests
/// (the test's own set-up) run unauthenticated and every later one must be signed by a key
/// moto's IAM knows.
pub fn moto(port: u16, auth: Option<u32>) -> Peer {
    let mut command = Command::new(python_bin());
    command.args([
        "-m",
        "moto.server",
        "-H",
        "127.0.0.1",
        "-p",
        &port.to_string(),
    ]);
    if let Some(free_actions) = auth {
        command.env("INITIAL_NO_AUTH_ACTION_COUNT", free_actions.to_string());
    }
    let mut peer = Peer::spawn("moto", command);
    peer.wait_for_port(port);
    peer
}

/// Runs `peer_aws.py PORT ARGS...` (boto3 against moto) and returns its JSON.
pub fn aws(port: u16, args: &[&str]) -> Value {
    let port = port.to_string();
    let mut all = vec![port.as_str()];
    all.extend_from_slice(args);
    python("peer_aws.py", &all)
}

/// [`aws`] signed with `key` (`{"access_key_id", "secret_access_key"}`), for reading back once
/// moto checks signatures.
pub fn aws_as(port: u16, key: &Value, args: &[&str]) -> Value {
    let port = port.to_string();
    let mut all = vec![port.as_str()];
    all.extend_from_slice(args);
    python_with_env(
        "peer_aws.py",
        &all,
        &[
            (
                "PEER_AWS_ACCESS_KEY_ID",
                key["access_key_id"].as_str().unwrap(),
            ),
            (
                "PEER_AWS_SECRET_ACCESS_KEY",
                key["secret_access_key"].as_str().unwrap(),
            ),
        ],
    )
}

/// A long-running Python reader (a subscriber) that printed `ready`; [`Background::finish`]
/// collects the JSON it prints at the end. Killed when dropped unfinished.
pub struct Background {
    child: Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Background {
    pub fn start(script: &str, args: &[&str]) -> Background {
        use std::io::BufRead as _;
        let mut child = Command::new(python_bin())
            .arg(workspace().join("host/tests/peers").join(script))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "{script} did not get ready");
        Background { child, stdout }
    }

    /// Waits for the script to end and parses what it printed after `ready`.
    pub fn finish(mut self) -> Value {
        use std::io::Read as _;
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the reader failed: {rest}");
        serde_json::from_str(&rest).unwrap_or_else(|e| panic!("no JSON ({e}): {rest}"))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The events every delivery test publishes: nested JSON and non-ASCII text, so that a payload
/// that arrives intact arrives byte for byte.
pub fn sample_events(n: usize) -> Vec<(String, Value)> {
    (0..n)
        .map(|i| {
            (
                if i % 2 == 0 { "order.created" } else { "order.paid" }.to_owned(),
                json!({ "order": i, "customer": "Zoë ☕", "lines": [{ "sku": format!("sku-{i}"), "qty": i + 1 }], "ok": true }),
            )
        })
        .collect()
}

/// One host with one tenant, one customer and one destination.
pub struct Setup {
    pub host: Host,
    pub vendor: Tenant,
    pub customer: Session,
}

pub const CUSTOMER: &str = "cust_1";

impl Setup {
    pub async fn new(
        host_args: &[String],
        type_id: &str,
        config: Value,
        credential: Option<(&str, Value)>,
    ) -> Setup {
        let args: Vec<&str> = host_args.iter().map(String::as_str).collect();
        let host = Host::start(&args).await;
        let vendor = host.create_tenant("Acme");
        let customer = vendor.session(CUSTOMER).await;
        let credential_id = match credential {
            Some((kind, secret)) => {
                let created = customer
                    .create(
                        "/embed/v1/credentials",
                        json!({ "name": "login", "kind": kind, "secret": secret }),
                    )
                    .await;
                Some(created["id"].as_str().unwrap().to_owned())
            }
            None => None,
        };
        let destination = customer
            .create(
                "/embed/v1/destinations",
                json!({ "type": type_id, "name": "dest", "config": config, "credential_id": credential_id }),
            )
            .await;
        assert_eq!(destination["type"], type_id);
        Setup {
            host,
            vendor,
            customer,
        }
    }

    /// Publishes the events in one batch call; their ids, in order.
    pub async fn publish(&self, events: &[(String, Value)]) -> Vec<String> {
        let body: Vec<Value> = events
            .iter()
            .map(|(t, p)| json!({ "external_id": CUSTOMER, "type": t, "payload": p }))
            .collect();
        let (status, answer) = self
            .vendor
            .call("POST", "/v1/events/batch", Some(json!({ "events": body })))
            .await;
        assert_eq!(status, 202, "{answer}");
        answer["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(r["deliveries"], 1, "{r}");
                r["event_id"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    /// Waits until `n` deliveries have `status`; fails early (with their attempts) when one ends
    /// in another final status.
    pub async fn wait_for(&self, status: &str, n: usize) -> Vec<Value> {
        let deliveries = eventually(
            &format!("{n} deliveries {status}"),
            Duration::from_secs(60),
            || async {
                let all = self.customer.deliveries("?limit=500").await;
                for d in &all {
                    let s = d["status"].as_str().unwrap();
                    if s != status && (s == "failed" || s == "succeeded") {
                        let detail = self.customer.delivery(d["id"].as_str().unwrap()).await;
                        panic!(
                            "a delivery ended {s} instead of {status}: {detail}\nhost log:\n{}",
                            tail(&self.host.log())
                        );
                    }
                }
                let done: Vec<Value> = all.into_iter().filter(|d| d["status"] == status).collect();
                (done.len() == n).then_some(done)
            },
        )
        .await;
        let mut detailed = Vec::new();
        for d in deliveries {
            detailed.push(self.customer.delivery(d["id"].as_str().unwrap()).await);
        }
        detailed
    }

    /// Waits until all `n` deliveries have ended, succeeded or failed; their list.
    pub async fn settle(&self, n: usize) -> Vec<Value> {
        eventually(
            "every delivery to settle",
            Duration::from_secs(30),
            || async {
                let all = self.customer.deliveries("?limit=500").await;
                let done = all.len() == n
                    && all
                        .iter()
                        .all(|d| matches!(d["status"].as_str(), Some("succeeded" | "failed")));
                done.then_some(all)
            },
        )
        .await
    }

    /// Replays one delivery and waits for its second attempt to succeed; the delivery's detail.
    pub async fn replay(&self, delivery_id: &str) -> Value {
        let (status, answer) = self
            .customer
            .call(
                "POST",
                "/embed/v1/replays",
                Some(json!({ "delivery_id": delivery_id })),
            )
            .await;
        assert_eq!(status, 202, "{answer}");
        eventually("the replay", Duration::from_secs(20), || async {
            let d = self.customer.delivery(delivery_id).await;
            (d["status"] == "succeeded" && d["attempts"].as_array().unwrap().len() == 2)
                .then_some(d)
        })
        .await
    }

    /// Waits until some delivery has an attempt, and returns that first attempt.
    pub async fn first_attempt(&self) -> Value {
        eventually("a first attempt", Duration::from_secs(30), || async {
            for d in self.customer.deliveries("").await {
                let detail = self.customer.delivery(d["id"].as_str().unwrap()).await;
                if let Some(first) = detail["attempts"].as_array().and_then(|a| a.first()) {
                    return Some(first.clone());
                }
            }
            None
        })
        .await
    }
}

/// The attempt outcomes of a delivery, in order.
pub fn outcomes(delivery: &Value) -> Vec<String> {
    delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap().to_owned())
        .collect()
}

/// Checks that the events travelled in batches: the attempts of one plugin call share their
/// start time, and at least one call carried more than one event.
pub fn assert_batched(deliveries: &[Value]) {
    let mut calls: BTreeMap<i64, usize> = BTreeMap::new();
    for started_at in deliveries
        .iter()
        .filter_map(|d| d["attempts"].as_array()?.last()?["started_at"].as_str())
        .filter_map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
    {
        *calls
            .entry((started_at.unix_timestamp_nanos() / 1_000_000) as i64)
            .or_default() += 1;
    }
    let largest = calls.values().copied().max().unwrap_or(0);
    assert!(
        largest > 1,
        "no call delivered more than one event: {deliveries:?}"
    );
}

/// Checks that what a reader got back is exactly what was published: `received` maps event id
/// to (type, payload).
pub fn assert_same_events(
    ids: &[String],
    events: &[(String, Value)],
    received: &BTreeMap<String, (String, Value)>,
) {
    let expected: BTreeMap<String, (String, Value)> =
        ids.iter().cloned().zip(events.iter().cloned()).collect();
    assert_eq!(
        received.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "every event arrives once, under its event id"
    );
    for (id, (event_type, payload)) in &expected {
        let (got_type, got_payload) = &received[id];
        if !got_type.is_empty() {
            assert_eq!(got_type, event_type, "type of {id}");
        }
        assert_eq!(got_payload, payload, "payload of {id}");
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Runs a command to completion, panicking with its output when it fails.
pub fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
