//! `kafka` against tansu, a Kafka-compatible broker (in-memory storage) started by each test on a
//! free port; topics are created and records consumed with kafka-python.
//!
//! Logins: with `--authentication`, tansu 0.6 offers SASL/SCRAM only (its SASL library is built
//! without PLAIN) and checks SCRAM logins against the users in its storage. The in-memory storage
//! has none, and users can only be added by an already authenticated client, so every SCRAM
//! login is refused by the broker: that is the refused-login case here. A successful SASL login
//! cannot be set up against tansu this way; the SCRAM client is checked against RFC 7677's
//! example in the plugin's unit tests.

use std::process::Command;

use serde_json::{json, Value};

use crate::support::{
    assert_batched, assert_same_events, fast_retries, free_port, outcomes, python, sample_events,
    unique, Peer, Setup,
};

fn tansu_bin() -> String {
    std::env::var("PUSHRAIL_TANSU")
        .unwrap_or_else(|_| "/var/tmp/pushrail-tools/tansu/bin/tansu".to_owned())
}

fn tansu(port: u16, authentication: bool) -> Peer {
    let bin = tansu_bin();
    assert!(
        std::path::Path::new(&bin).exists(),
        "tansu is not installed at {bin}: run scripts/test, which installs it (ensure_tansu)"
    );
    let url = format!("tcp://127.0.0.1:{port}");
    let mut command = Command::new(bin);
    command
        .arg("broker")
        .args(["--listener-url", &url, "--advertised-listener-url", &url])
        .args(["--storage-engine", "memory://tansu/"]);
    if authentication {
        command.arg("--authentication");
    }
    let mut peer = Peer::spawn("tansu", command);
    peer.wait_for_port(port);
    peer
}

fn peer(port: u16, args: &[&str]) -> Value {
    let port = port.to_string();
    let mut all = vec![port.as_str()];
    all.extend_from_slice(args);
    python("peer_kafka.py", &all)
}

/// Consumes `n` records and checks each is where Kafka's default partitioner puts its key, with
/// the event id header; returns them by event id.
fn consume(
    port: u16,
    topic: &str,
    n: usize,
) -> (
    Vec<Value>,
    std::collections::BTreeMap<String, (String, Value)>,
) {
    let records = peer(port, &["consume", topic, &n.to_string()]);
    let records = records.as_array().unwrap().clone();
    let mut received = std::collections::BTreeMap::new();
    for r in &records {
        assert_eq!(
            r["partition"], r["expected_partition"],
            "murmur2 partitioning: {r}"
        );
        assert_eq!(r["headers"]["content-type"], "application/json");
        assert!(r["timestamp"].as_u64().unwrap() > 1_700_000_000_000, "{r}");
        received.insert(
            r["headers"]["pushrail-event-id"]
                .as_str()
                .unwrap()
                .to_owned(),
            (
                r["headers"]["pushrail-event-type"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                serde_json::from_str(r["value"].as_str().unwrap()).unwrap(),
            ),
        );
    }
    (records, received)
}

#[tokio::test]
async fn kafka_produces_a_batch_keyed_by_event_id() {
    let port = free_port();
    let _tansu = tansu(port, false);
    let topic = unique("pushrail-events");
    peer(port, &["create-topic", &topic, "3"]);
    let setup = Setup::new(
        &[],
        "kafka",
        json!({ "bootstrap_servers": [format!("127.0.0.1:{port}")], "topic": topic }),
        None,
    )
    .await;
    let events = sample_events(8);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    assert_batched(&delivered);
    for d in &delivered {
        assert_eq!(outcomes(d), ["succeeded"], "{d}");
        let excerpt = d["attempts"][0]["response_excerpt"].as_str().unwrap();
        assert!(
            excerpt.contains(&format!("written to {topic}")),
            "{excerpt}"
        );
        // tansu grants producer ids (InitProducerId): the batches carry sequence numbers.
        assert!(excerpt.ends_with("idempotent producer"), "{excerpt}");
    }
    let (records, received) = consume(port, &topic, ids.len());
    assert_eq!(records.len(), ids.len(), "no duplicates");
    for r in &records {
        assert_eq!(
            r["key"], r["headers"]["pushrail-event-id"],
            "keyed by event id"
        );
    }
    let partitions: std::collections::BTreeSet<u64> = records
        .iter()
        .map(|r| r["partition"].as_u64().unwrap())
        .collect();
    assert!(
        partitions.len() > 1,
        "8 keys spread over 3 partitions: {partitions:?}"
    );
    assert_same_events(&ids, &events, &received);
}

#[tokio::test]
async fn kafka_keys_by_a_payload_field_with_gzip() {
    let port = free_port();
    let _tansu = tansu(port, false);
    let topic = unique("pushrail-keyed");
    peer(port, &["create-topic", &topic, "2"]);
    let setup = Setup::new(
        &[],
        "kafka",
        json!({
            "bootstrap_servers": [format!("127.0.0.1:{port}")], "topic": topic,
            "key_field": "/lines/0/sku", "compression": "gzip"
        }),
        None,
    )
    .await;
    let events = sample_events(4);
    let ids = setup.publish(&events).await;
    setup.wait_for("succeeded", ids.len()).await;
    let (records, received) = consume(port, &topic, ids.len());
    for r in &records {
        let payload: Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
        assert_eq!(
            r["key"], payload["lines"][0]["sku"],
            "keyed by the payload field"
        );
    }
    assert_same_events(&ids, &events, &received);
}

#[tokio::test]
async fn kafka_refused_scram_login_is_a_permanent_error() {
    let port = free_port();
    let _tansu = tansu(port, true);
    let setup = Setup::new(
        &fast_retries(),
        "kafka",
        json!({ "bootstrap_servers": [format!("127.0.0.1:{port}")], "topic": "events" }),
        Some((
            "sasl_scram",
            json!({ "username": "pushrail", "password": "wrong-password", "mechanism": "SCRAM-SHA-256" }),
        )),
    )
    .await;
    setup.publish(&sample_events(2)).await;
    for d in setup.wait_for("failed", 2).await {
        assert_eq!(outcomes(&d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        // tansu answers the client-first message with SCRAM's "e=unknown-user".
        assert!(
            error.contains("SCRAM") && error.contains("unknown-user"),
            "{error}"
        );
        assert!(!error.contains("wrong-password"), "no secret in the log");
    }
}

#[tokio::test]
async fn kafka_unreachable_broker_is_retried_until_it_is_there() {
    let port = free_port();
    let topic = unique("pushrail-late");
    let setup = Setup::new(
        &fast_retries(),
        "kafka",
        json!({ "bootstrap_servers": [format!("127.0.0.1:{port}")], "topic": topic }),
        None,
    )
    .await;
    let events = sample_events(3);
    let ids = setup.publish(&events).await;
    let first = setup.first_attempt().await;
    assert_eq!(first["outcome"], "retryable_error", "{first}");
    assert!(
        first["error"].as_str().unwrap().contains("unreachable"),
        "{first}"
    );

    // The broker comes up; until the topic exists, attempts fail with a retryable
    // UNKNOWN_TOPIC_OR_PARTITION.
    let _tansu = tansu(port, false);
    peer(port, &["create-topic", &topic, "1"]);
    for d in setup.wait_for("succeeded", ids.len()).await {
        let outcomes = outcomes(&d);
        assert_eq!(outcomes.last().unwrap(), "succeeded");
        assert!(outcomes[..outcomes.len() - 1]
            .iter()
            .all(|o| o == "retryable_error"));
    }
    let (records, received) = consume(port, &topic, ids.len());
    assert_eq!(records.len(), ids.len());
    assert_same_events(&ids, &events, &received);
}
