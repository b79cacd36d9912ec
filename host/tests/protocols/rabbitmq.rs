//! `rabbitmq` against the RabbitMQ on 127.0.0.1:5672 (guest/guest), read back with pika.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::support::{
    assert_batched, assert_same_events, fast_retries, free_port, outcomes, python, sample_events,
    unique, Forwarder, Setup,
};

const RABBITMQ: u16 = 5672;

fn guest(password: &str) -> Option<(&'static str, Value)> {
    Some((
        "basic",
        json!({ "username": "guest", "password": password }),
    ))
}

fn read_back(queue: &str, n: usize) -> (Vec<Value>, BTreeMap<String, (String, Value)>) {
    let messages = python("peer_rabbitmq.py", &["drain", queue, &n.to_string()]);
    let messages = messages.as_array().unwrap().clone();
    let received = messages
        .iter()
        .map(|m| {
            (
                m["message_id"].as_str().unwrap().to_owned(),
                (
                    m["type"].as_str().unwrap().to_owned(),
                    serde_json::from_str(m["body"].as_str().unwrap()).unwrap(),
                ),
            )
        })
        .collect();
    (messages, received)
}

#[tokio::test]
async fn rabbitmq_delivers_a_batch_with_publisher_confirms() {
    let queue = unique("pushrail_rmq");
    python("peer_rabbitmq.py", &["declare", &queue]);
    let setup = Setup::new(
        &[],
        "rabbitmq",
        json!({ "host": "127.0.0.1", "port": RABBITMQ, "routing_key": queue }),
        guest("guest"),
    )
    .await;
    let events = sample_events(7);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    assert_batched(&delivered);
    for d in &delivered {
        assert_eq!(outcomes(d), ["succeeded"], "{d}");
        let excerpt = d["attempts"][0]["response_excerpt"].as_str().unwrap();
        assert!(excerpt.contains("confirmed by the broker"), "{excerpt}");
    }

    let (messages, received) = read_back(&queue, ids.len());
    assert_eq!(messages.len(), ids.len(), "no duplicates: {messages:?}");
    assert_same_events(&ids, &events, &received);
    for m in &messages {
        assert_eq!(m["content_type"], "application/json");
        assert_eq!(m["delivery_mode"], 2, "persistent by default");
        assert_eq!(m["app_id"], "pushrail");
        assert!(m["timestamp"].as_u64().unwrap() > 1_700_000_000);
    }
}

#[tokio::test]
async fn rabbitmq_unroutable_messages_are_retried_not_dropped() {
    // No queue is bound for this routing key: the broker returns the message (mandatory).
    let setup = Setup::new(
        &fast_retries(),
        "rabbitmq",
        json!({ "host": "127.0.0.1", "routing_key": unique("pushrail_nowhere") }),
        guest("guest"),
    )
    .await;
    setup.publish(&sample_events(1)).await;
    let first = setup.first_attempt().await;
    assert_eq!(first["outcome"], "retryable_error", "{first}");
    let error = first["error"].as_str().unwrap();
    assert!(error.contains("NO_ROUTE"), "{error}");
}

#[tokio::test]
async fn rabbitmq_wrong_password_is_a_permanent_error() {
    let setup = Setup::new(
        &fast_retries(),
        "rabbitmq",
        json!({ "host": "127.0.0.1", "routing_key": unique("pushrail_rmq") }),
        guest("not-the-password"),
    )
    .await;
    setup.publish(&sample_events(2)).await;
    let failed = setup.wait_for("failed", 2).await;
    for d in &failed {
        assert_eq!(outcomes(d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(
            error.contains("403") && error.contains("ACCESS_REFUSED"),
            "{error}"
        );
        assert!(!error.contains("not-the-password"), "no secret in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_unreachable_broker_is_retried_until_it_is_there() {
    let queue = unique("pushrail_rmq");
    python("peer_rabbitmq.py", &["declare", &queue]);
    let port = free_port();
    let setup = Setup::new(
        &fast_retries(),
        "rabbitmq",
        json!({ "host": "127.0.0.1", "port": port, "routing_key": queue }),
        guest("guest"),
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

    // The broker appears on that port.
    let _forwarder = Forwarder::start(port, RABBITMQ).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    for d in &delivered {
        let outcomes = outcomes(d);
        assert_eq!(outcomes.last().unwrap(), "succeeded");
        assert!(outcomes[..outcomes.len() - 1]
            .iter()
            .all(|o| o == "retryable_error"));
    }
    let (_, received) = read_back(&queue, ids.len());
    assert_same_events(&ids, &events, &received);
}
