//! `redis_streams` against the Redis on 127.0.0.1:6379 (no password), and against a private
//! `redis-server` with a password and an ACL user started on a free port for the login and
//! unreachable cases; read back with redis-py.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::{
    assert_batched, assert_same_events, fast_retries, free_port, outcomes, python, sample_events,
    unique, Peer, Setup,
};

const REDIS: u16 = 6379;
const PASSWORD: &str = "requirepass-for-tests";
const ACL_USER: &str = "pushrail";
const ACL_PASSWORD: &str = "acl-password-for-tests";

/// A `redis-server` of our own on `port`: requirepass for the default user, plus an ACL user.
fn private_redis(port: u16) -> Peer {
    // Nothing is persisted (--save "", no AOF), so the temp dir only serves as a working dir.
    let dir = std::env::temp_dir();
    let mut command = Command::new("redis-server");
    command
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(&dir)
        .args(["--requirepass", PASSWORD])
        .args(["--user", ACL_USER, "on", &format!(">{ACL_PASSWORD}")])
        .args(["~*", "&*", "+@all"]);
    let mut peer = Peer::spawn("redis-server", command);
    peer.wait_for_port(port);
    peer
}

fn read_back(
    port: &str,
    stream: &str,
    login: &[&str],
) -> (usize, BTreeMap<String, (String, Value)>) {
    let mut args = vec![port.to_owned(), stream.to_owned()];
    args.extend(login.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let answer = python("peer_redis_streams.py", &args);
    let received = answer["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let f = &e["fields"];
            assert!(f["occurred_at"].as_str().unwrap().parse::<u64>().unwrap() > 1_700_000_000_000);
            (
                f["id"].as_str().unwrap().to_owned(),
                (
                    f["type"].as_str().unwrap().to_owned(),
                    serde_json::from_str(f["payload"].as_str().unwrap()).unwrap(),
                ),
            )
        })
        .collect();
    (answer["length"].as_u64().unwrap() as usize, received)
}

#[tokio::test]
async fn redis_streams_delivers_a_batch_with_xadd() {
    let stream = unique("pushrail:events");
    let setup = Setup::new(
        &[],
        "redis_streams",
        json!({ "host": "127.0.0.1", "port": REDIS, "stream": stream }),
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
        assert!(excerpt.contains("entries added to"), "{excerpt}");
    }
    let (length, received) = read_back("6379", &stream, &[]);
    assert_eq!(length, ids.len(), "no duplicates");
    assert_same_events(&ids, &events, &received);
}

#[tokio::test]
async fn redis_streams_trims_with_maxlen_in_another_database() {
    let stream = unique("pushrail:trimmed");
    let setup = Setup::new(
        &[],
        "redis_streams",
        json!({ "host": "127.0.0.1", "stream": stream, "max_len": 2, "approximate": false, "database": 3 }),
        None,
    )
    .await;
    let ids = setup.publish(&sample_events(5)).await;
    setup.wait_for("succeeded", ids.len()).await;
    let (length, received) = read_back("6379/3", &stream, &[]);
    assert_eq!(
        length, 2,
        "MAXLEN = 2 keeps the two newest entries, in database 3"
    );
    assert!(received.contains_key(&ids[4]), "{received:?}");
}

#[tokio::test]
async fn redis_streams_wrong_password_is_a_permanent_error() {
    let port = free_port();
    let _redis = private_redis(port);
    let setup = Setup::new(
        &fast_retries(),
        "redis_streams",
        json!({ "host": "127.0.0.1", "port": port, "stream": unique("pushrail:events") }),
        Some(("secret", json!({ "value": "wrong-password" }))),
    )
    .await;
    setup.publish(&sample_events(2)).await;
    for d in setup.wait_for("failed", 2).await {
        assert_eq!(outcomes(&d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(error.contains("WRONGPASS"), "{error}");
        assert!(!error.contains("wrong-password"), "no secret in the log");
    }
}

#[tokio::test]
async fn redis_streams_unreachable_server_is_retried_until_it_is_there() {
    let port = free_port();
    let stream = unique("pushrail:events");
    let setup = Setup::new(
        &fast_retries(),
        "redis_streams",
        json!({ "host": "127.0.0.1", "port": port, "stream": stream }),
        Some((
            "basic",
            json!({ "username": ACL_USER, "password": ACL_PASSWORD }),
        )),
    )
    .await;
    let events = sample_events(3);
    let ids = setup.publish(&events).await;
    let first = setup.first_attempt().await;
    assert_eq!(first["outcome"], "retryable_error", "{first}");

    let _redis = private_redis(port);
    for d in setup.wait_for("succeeded", ids.len()).await {
        let outcomes = outcomes(&d);
        assert_eq!(outcomes.last().unwrap(), "succeeded");
        assert!(outcomes[..outcomes.len() - 1]
            .iter()
            .all(|o| o == "retryable_error"));
    }
    let (length, received) = read_back(&port.to_string(), &stream, &[ACL_USER, ACL_PASSWORD]);
    assert_eq!(length, ids.len());
    assert_same_events(&ids, &events, &received);
}
