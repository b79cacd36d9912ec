//! `nats` against the NATS server with JetStream on 127.0.0.1:4222 (no auth), and against private
//! `nats-server`s (user/password, token) started on free ports for the login and unreachable
//! cases; streams are created and read back with nats-py.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::{
    assert_batched, assert_same_events, fast_retries, free_port, outcomes, python, sample_events,
    unique, Peer, Setup,
};

const NATS: u16 = 4222;

/// A `nats-server` with JetStream on `port`, its storage in a temp dir; `auth` are extra flags.
fn private_nats(port: u16, auth: &[&str]) -> (Peer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new("nats-server");
    command
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(dir.path())
        .args(auth);
    let mut peer = Peer::spawn("nats-server", command);
    peer.wait_for_port(port);
    (peer, dir)
}

fn add_stream(port: u16, stream: &str, subject: &str, auth: &[&str]) {
    let mut args = vec![
        port.to_string(),
        "add-stream".into(),
        stream.into(),
        subject.into(),
    ];
    args.extend(auth.iter().map(|s| (*s).to_owned()));
    python(
        "peer_nats.py",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}

fn read_back(port: u16, stream: &str, auth: &[&str]) -> (u64, BTreeMap<String, (String, Value)>) {
    let mut args = vec![port.to_string(), "read".into(), stream.into()];
    args.extend(auth.iter().map(|s| (*s).to_owned()));
    let answer = python(
        "peer_nats.py",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let received = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let headers = &m["headers"];
            assert_eq!(headers["Content-Type"], "application/json");
            (
                headers["Nats-Msg-Id"].as_str().unwrap().to_owned(),
                (
                    headers["Pushrail-Event-Type"].as_str().unwrap().to_owned(),
                    serde_json::from_str(m["data"].as_str().unwrap()).unwrap(),
                ),
            )
        })
        .collect();
    (answer["messages"].as_u64().unwrap(), received)
}

#[tokio::test]
async fn nats_delivers_a_batch_to_jetstream_and_deduplicates_a_replay() {
    let stream = unique("PUSHRAIL").to_uppercase();
    let subject = format!("{}.events", stream.to_lowercase());
    add_stream(NATS, &stream, &subject, &[]);
    let setup = Setup::new(
        &[],
        "nats",
        json!({ "host": "127.0.0.1", "port": NATS, "subject": subject }),
        None,
    )
    .await;
    let events = sample_events(6);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    assert_batched(&delivered);
    for d in &delivered {
        assert_eq!(outcomes(d), ["succeeded"], "{d}");
        let excerpt = d["attempts"][0]["response_excerpt"].as_str().unwrap();
        assert!(
            excerpt.contains(&format!("stored in stream {stream}")),
            "{excerpt}"
        );
    }

    // A replay sends the same event again; JetStream drops it as a duplicate of its Nats-Msg-Id.
    let detail = setup.replay(delivered[0]["id"].as_str().unwrap()).await;
    let excerpt = detail["attempts"][1]["response_excerpt"].as_str().unwrap();
    assert!(excerpt.contains("deduplicated by Nats-Msg-Id"), "{excerpt}");

    let (count, received) = read_back(NATS, &stream, &[]);
    assert_eq!(count, ids.len() as u64, "the replay was deduplicated");
    assert_same_events(&ids, &events, &received);
}

#[tokio::test]
async fn nats_subject_without_a_stream_is_retryable() {
    let setup = Setup::new(
        &fast_retries(),
        "nats",
        json!({ "host": "127.0.0.1", "subject": format!("{}.nobody", unique("pushrail")) }),
        None,
    )
    .await;
    setup.publish(&sample_events(1)).await;
    let first = setup.first_attempt().await;
    assert_eq!(first["outcome"], "retryable_error", "{first}");
    assert!(
        first["error"].as_str().unwrap().contains("no responders"),
        "{first}"
    );
}

#[tokio::test]
async fn nats_wrong_password_is_a_permanent_error() {
    let port = free_port();
    let (_nats, _dir) = private_nats(port, &["--user", "pushrail", "--pass", "right-password"]);
    let setup = Setup::new(
        &fast_retries(),
        "nats",
        json!({ "host": "127.0.0.1", "port": port, "subject": "events.orders" }),
        Some((
            "basic",
            json!({ "username": "pushrail", "password": "wrong-password" }),
        )),
    )
    .await;
    setup.publish(&sample_events(2)).await;
    for d in setup.wait_for("failed", 2).await {
        assert_eq!(outcomes(&d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(error.contains("Authorization Violation"), "{error}");
        assert!(!error.contains("wrong-password"), "no secret in the log");
    }
}

#[tokio::test]
async fn nats_unreachable_server_is_retried_until_it_is_there() {
    const TOKEN: &str = "token-for-tests";
    let port = free_port();
    let stream = unique("PUSHRAIL").to_uppercase();
    let setup = Setup::new(
        &fast_retries(),
        "nats",
        json!({ "host": "127.0.0.1", "port": port, "subject": "events.orders" }),
        Some(("nats_token", json!({ "token": TOKEN }))),
    )
    .await;
    let events = sample_events(3);
    let ids = setup.publish(&events).await;
    let first = setup.first_attempt().await;
    assert_eq!(first["outcome"], "retryable_error", "{first}");

    let (_nats, _dir) = private_nats(port, &["--auth", TOKEN]);
    let auth = ["--token", TOKEN];
    add_stream(port, &stream, "events.orders", &auth);
    for d in setup.wait_for("succeeded", ids.len()).await {
        let outcomes = outcomes(&d);
        assert_eq!(outcomes.last().unwrap(), "succeeded");
        assert!(outcomes[..outcomes.len() - 1]
            .iter()
            .all(|o| o == "retryable_error"));
    }
    let (count, received) = read_back(port, &stream, &auth);
    assert_eq!(count, ids.len() as u64);
    assert_same_events(&ids, &events, &received);
}

#[tokio::test]
async fn nats_a_message_over_max_payload_fails_alone_and_its_batch_mates_are_stored_once() {
    // A server of our own with a small `max_payload`, so an event the API accepts is too large.
    let port = free_port();
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "max_payload: 2048\n").unwrap();
    let config_path = config.path().display().to_string();
    let (_nats, _dir) = private_nats(port, &["-c", &config_path]);
    let stream = unique("PUSHRAIL").to_uppercase();
    let subject = format!("{}.events", stream.to_lowercase());
    add_stream(port, &stream, &subject, &[]);
    let setup = Setup::new(
        &fast_retries(),
        "nats",
        json!({ "host": "127.0.0.1", "port": port, "subject": subject }),
        None,
    )
    .await;
    let mut events = sample_events(6);
    events[2].1 = json!({ "blob": "x".repeat(4096) });
    let ids = setup.publish(&events).await;
    let settled = setup.settle(ids.len()).await;
    for d in &settled {
        let oversized = d["event_id"] == ids[2].as_str();
        let want = if oversized { "failed" } else { "succeeded" };
        assert_eq!(d["status"], want, "{d}");
        let detail = setup.customer.delivery(d["id"].as_str().unwrap()).await;
        if oversized {
            assert_eq!(outcomes(&detail), ["permanent_error"], "{detail}");
            let error = detail["attempts"][0]["error"].as_str().unwrap();
            assert!(error.contains("max_payload"), "{error}");
        } else {
            assert_eq!(outcomes(&detail), ["succeeded"], "{detail}");
        }
    }
    let (count, received) = read_back(port, &stream, &[]);
    assert_eq!(count, 5, "the five others, each stored once");
    let mut expected_ids = ids.clone();
    expected_ids.remove(2);
    let mut expected_events = events.clone();
    expected_events.remove(2);
    assert_same_events(&expected_ids, &expected_events, &received);
}
