//! `sqs` against moto server (PyPI `moto[server]`) started by each test on a free port, with its
//! auth checks on where a test says so; queues are created and messages received with boto3.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::support::{
    assert_batched, assert_same_events, aws, fast_retries, free_port, moto, outcomes,
    sample_events, unique, Setup,
};

const REGION: &str = "us-east-1";

/// What boto3 received, by event id: (type, payload), checked against the message attributes.
fn received(messages: &Value) -> BTreeMap<String, (String, Value)> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let body: Value = serde_json::from_str(m["body"].as_str().unwrap()).unwrap();
            let id = body["id"].as_str().unwrap().to_owned();
            assert_eq!(m["attributes"]["pushrail-event-id"], id.as_str(), "{m}");
            assert_eq!(m["attributes"]["pushrail-event-type"], body["type"], "{m}");
            (
                id,
                (
                    body["type"].as_str().unwrap().to_owned(),
                    body["payload"].clone(),
                ),
            )
        })
        .collect()
}

fn config(port: u16, queue_url: &str) -> Value {
    json!({ "queue_url": queue_url, "region": REGION, "endpoint": format!("http://127.0.0.1:{port}") })
}

#[tokio::test]
async fn sqs_sends_a_batch_with_the_event_id_and_type_as_attributes() {
    let port = free_port();
    let _moto = moto(port, None);
    let queue = aws(port, &["create-queue", &unique("pushrail")])["queue_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let setup = Setup::new(
        &[],
        "sqs",
        config(port, &queue),
        Some((
            "aws_access_key",
            json!({ "access_key_id": "AKIDPUSHRAILTEST", "secret_access_key": "not-checked-here" }),
        )),
    )
    .await;
    let events = sample_events(6);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    assert_batched(&delivered);
    for d in &delivered {
        assert_eq!(outcomes(d), ["succeeded"], "{d}");
    }
    let messages = aws(port, &["receive", &queue, &ids.len().to_string()]);
    assert_same_events(&ids, &events, &received(&messages));
}

#[tokio::test]
async fn sqs_fifo_queue_gets_group_ids_from_the_template_and_drops_a_replayed_duplicate() {
    let port = free_port();
    let _moto = moto(port, None);
    let queue = aws(
        port,
        &["create-queue", &format!("{}.fifo", unique("pushrail"))],
    )["queue_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut config = config(port, &queue);
    config["message_group_id"] = json!("order-{{payload.order}}");
    let setup = Setup::new(
        &[],
        "sqs",
        config,
        Some((
            "aws_access_key",
            json!({ "access_key_id": "AKIDPUSHRAILTEST", "secret_access_key": "not-checked-here" }),
        )),
    )
    .await;
    let events = sample_events(4);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;

    // A replay sends the same event again; SQS drops it by its deduplication id (the event id).
    let replayed = delivered[0]["id"].as_str().unwrap().to_owned();
    let (status, answer) = setup
        .customer
        .call(
            "POST",
            "/embed/v1/replays",
            Some(json!({ "delivery_id": replayed })),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    crate::common::eventually("the replay", std::time::Duration::from_secs(20), || async {
        let d = setup.customer.delivery(&replayed).await;
        (d["status"] == "succeeded" && d["attempts"].as_array().unwrap().len() == 2).then_some(())
    })
    .await;

    let messages = aws(port, &["receive", &queue, &ids.len().to_string()]);
    for m in messages.as_array().unwrap() {
        let body: Value = serde_json::from_str(m["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            m["group_id"],
            format!("order-{}", body["payload"]["order"]),
            "the group id comes from the template: {m}"
        );
    }
    assert_same_events(&ids, &events, &received(&messages));
}

#[tokio::test]
async fn sqs_wrong_secret_key_is_a_permanent_error_with_awss_code() {
    let port = free_port();
    // Set-up: create the user, its policy and key, and the queue, unauthenticated.
    let _moto = moto(port, Some(4));
    let key = aws(port, &["create-key"]);
    let queue = aws(port, &["create-queue", &unique("pushrail")])["queue_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = Setup::new(
        &fast_retries(),
        "sqs",
        config(port, &queue),
        Some((
            "aws_access_key",
            json!({ "access_key_id": key["access_key_id"], "secret_access_key": "wrong-secret-key" }),
        )),
    )
    .await;
    wrong.publish(&sample_events(1)).await;
    let failed = wrong.wait_for("failed", 1).await;
    assert_eq!(outcomes(&failed[0]), ["permanent_error"], "{}", failed[0]);
    let error = failed[0]["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("SignatureDoesNotMatch"), "{error}");
    assert!(!error.contains("wrong-secret-key"), "no secret in the log");

    let right = Setup::new(
        &[],
        "sqs",
        config(port, &queue),
        Some((
            "aws_access_key",
            json!({ "access_key_id": key["access_key_id"], "secret_access_key": key["secret_access_key"] }),
        )),
    )
    .await;
    let events = sample_events(3);
    let ids = right.publish(&events).await;
    right.wait_for("succeeded", ids.len()).await;
}
