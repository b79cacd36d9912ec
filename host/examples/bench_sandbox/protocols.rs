//! Batches per second of the rabbitmq and kafka plugins against their local peers: with the
//! destination's session kept warm (one connection for every batch) beside cold (a new session,
//! hence a new connection and login, per batch). Peers: the machine's RabbitMQ (guest/guest on
//! 5672) and a tansu broker this benchmark starts (`PUSHRAIL_TANSU`); queues and topics are made
//! with the test suite's Python peers (`PUSHRAIL_TEST_PYTHON`). A peer that is missing is
//! skipped with a note.

use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pushrail_sandbox::{Credential, Event, Sandbox, SessionKey, SessionSpec};

/// Events per batch in these runs.
const BATCH: usize = 20;
/// Batches in flight at once (one per destination).
const IN_FLIGHT: usize = 4;

pub async fn run(host: &Arc<Sandbox>, window: Duration) {
    let python = std::env::var("PUSHRAIL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let peers = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers");
    let suffix = std::process::id();

    if host.get("rabbitmq").is_some() {
        let queue = format!("pushrail_bench_{suffix}");
        match peer(
            &python,
            &format!("{peers}/peer_rabbitmq.py"),
            &["declare", &queue],
        ) {
            Ok(()) => {
                let config = serde_json::json!({ "host": "127.0.0.1", "routing_key": queue });
                let credential = Credential {
                    kind: "basic".into(),
                    secret: r#"{"username":"guest","password":"guest"}"#.into(),
                };
                compare(
                    host,
                    "rabbitmq",
                    &config.to_string(),
                    Some(credential),
                    window,
                )
                .await;
            }
            Err(error) => println!("rabbitmq: skipped ({error})"),
        }
    }

    if host.get("kafka").is_some() {
        match Tansu::start() {
            Ok(tansu) => {
                let topic = format!("bench-{suffix}");
                let port = tansu.port.to_string();
                match peer(
                    &python,
                    &format!("{peers}/peer_kafka.py"),
                    &[&port, "create-topic", &topic, "3"],
                ) {
                    Ok(()) => {
                        let config = serde_json::json!({
                            "bootstrap_servers": [format!("127.0.0.1:{port}")], "topic": topic
                        });
                        compare(host, "kafka", &config.to_string(), None, window).await;
                    }
                    Err(error) => println!("kafka: skipped ({error})"),
                }
            }
            Err(error) => println!("kafka: skipped ({error})"),
        }
    }
}

async fn compare(
    host: &Arc<Sandbox>,
    type_id: &'static str,
    config: &str,
    credential: Option<Credential>,
    window: Duration,
) {
    let plugin = host.get(type_id).expect("loaded");
    let mut figures = Vec::new();
    for warm in [true, false] {
        let fresh = Arc::new(AtomicU64::new(0));
        let rate = {
            let (host, plugin, config, credential) = (
                host.clone(),
                plugin.clone(),
                config.to_owned(),
                credential.clone(),
            );
            super::run_for(window, IN_FLIGHT, move |i| {
                let (host, plugin, config, credential, fresh) = (
                    host.clone(),
                    plugin.clone(),
                    config.clone(),
                    credential.clone(),
                    fresh.clone(),
                );
                async move {
                    // Warm: four destinations, each reusing its session. Cold: a destination
                    // never seen before for every batch.
                    let destination = if warm {
                        format!("warm_{}", i as usize % IN_FLIGHT)
                    } else {
                        format!("cold_{}", fresh.fetch_add(1, Ordering::Relaxed))
                    };
                    let key = SessionKey::new(&destination, &[config.as_bytes()]);
                    let spec = move || Ok(SessionSpec { config, credential });
                    let events = (0..BATCH)
                        .map(|k| Event {
                            id: format!("evt_{destination}_{i}_{k}"),
                            event_type: "order.created".into(),
                            occurred_at: 1_700_000_000_000,
                            payload: br#"{"order":42,"total":"19.99"}"#.to_vec(),
                            attributes: Vec::new(),
                        })
                        .collect();
                    match host.deliver(&plugin, key, spec, events).await {
                        Ok(outcomes) if outcomes.iter().all(|o| o.result.is_ok()) => 1,
                        Ok(outcomes) => {
                            if let Some(Err(failure)) =
                                outcomes.iter().map(|o| &o.result).find(|r| r.is_err())
                            {
                                eprintln!("{type_id}: {}", failure.message);
                            }
                            0
                        }
                        Err(failure) => {
                            eprintln!("{type_id}: {}", failure.message);
                            0
                        }
                    }
                }
            })
            .await
        };
        figures.push(rate);
    }
    println!(
        "{type_id}: batches of {BATCH}/s, {IN_FLIGHT} in flight: warm sessions {:.0}/s, a new session per batch {:.0}/s ({:.1}x)",
        figures[0],
        figures[1],
        figures[0] / figures[1].max(1e-9)
    );
}

fn peer(python: &str, script: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

struct Tansu {
    child: Child,
    port: u16,
}

impl Tansu {
    fn start() -> Result<Self, String> {
        let bin = std::env::var("PUSHRAIL_TANSU")
            .unwrap_or_else(|_| "/var/tmp/pushrail-tools/tansu/bin/tansu".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("{bin}: {e}"))?;
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Self { child, port });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("tansu did not start listening".into())
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
