//! `sns` against moto server (PyPI `moto[server]`) started by each test on a free port: a topic
//! with an SQS queue subscribed (raw message delivery), and what the subscription delivered read
//! back with boto3.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::support::{
    assert_batched, assert_same_events, aws, free_port, moto, outcomes, sample_events, unique,
    Setup,
};

const REGION: &str = "us-east-1";

fn credential() -> Option<(&'static str, Value)> {
    Some((
        "aws_access_key",
        json!({ "access_key_id": "AKIDPUSHRAILTEST", "secret_access_key": "not-checked-here" }),
    ))
}

fn config(port: u16, topic_arn: &str) -> Value {
    json!({ "topic_arn": topic_arn, "region": REGION, "endpoint": format!("http://127.0.0.1:{port}") })
}

/// A topic named `name` (FIFO when it ends in `.fifo`) and a queue of the same kind subscribed to
/// it with raw message delivery: (topic ARN, queue URL).
fn topic_with_queue(port: u16, name: &str) -> (String, String) {
    let queue_name = if name.ends_with(".fifo") {
        format!("{}.fifo", unique("pushrail-q"))
    } else {
        unique("pushrail-q")
    };
    let queue = aws(port, &["create-queue", &queue_name])["queue_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let topic = aws(port, &["create-topic", name])["topic_arn"]
        .as_str()
        .unwrap()
        .to_owned();
    aws(port, &["subscribe-queue", &topic, &queue]);
    (topic, queue)
}

/// What the queue received, by event id: (type, payload). Each message is our record as is (raw
/// delivery), with the event id and type as message attributes, and arrives once.
fn received(messages: &Value) -> BTreeMap<String, (String, Value)> {
    let mut out = BTreeMap::new();
    for m in messages.as_array().unwrap() {
        let body: Value = serde_json::from_str(m["body"].as_str().unwrap()).unwrap();
        let id = body["id"].as_str().unwrap().to_owned();
        assert_eq!(m["attributes"]["pushrail-event-id"], id.as_str(), "{m}");
        assert_eq!(m["attributes"]["pushrail-event-type"], body["type"], "{m}");
        assert!(body["occurred_at"].is_string(), "{m}");
        let previous = out.insert(
            id.clone(),
            (
                body["type"].as_str().unwrap().to_owned(),
                body["payload"].clone(),
            ),
        );
        assert!(previous.is_none(), "{id} was delivered twice");
    }
    out
}

#[tokio::test]
async fn sns_publishes_a_batch_that_an_sqs_subscription_receives_with_the_event_id_and_type() {
    let port = free_port();
    let _moto = moto(port, None);
    let (topic, queue) = topic_with_queue(port, &unique("pushrail"));
    let setup = Setup::new(&[], "sns", config(port, &topic), credential()).await;
    let events = sample_events(6);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    assert_batched(&delivered);
    for d in &delivered {
        assert_eq!(outcomes(d), ["succeeded"], "{d}");
        let excerpt = d["attempts"][0]["response_excerpt"].as_str().unwrap_or("");
        assert!(excerpt.starts_with("MessageId "), "{d}");
    }
    let messages = aws(port, &["receive", &queue, &ids.len().to_string()]);
    assert_eq!(messages.as_array().unwrap().len(), ids.len(), "{messages}");
    for m in messages.as_array().unwrap() {
        assert!(
            m["group_id"].is_null(),
            "a standard topic has no groups: {m}"
        );
    }
    assert_same_events(&ids, &events, &received(&messages));
}

#[tokio::test]
async fn sns_fifo_topic_gets_group_ids_from_the_template_and_a_replay_is_not_delivered_twice() {
    let port = free_port();
    let _moto = moto(port, None);
    let (topic, queue) = topic_with_queue(port, &format!("{}.fifo", unique("pushrail")));
    let mut config = config(port, &topic);
    config["message_group_id"] = json!("order-{{payload.order}}");
    let setup = Setup::new(&[], "sns", config, credential()).await;
    let events = sample_events(4);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;

    // A replay publishes the same event again, with the same deduplication id (the event id):
    // SNS takes it but does not deliver it a second time.
    let replayed = delivered[0]["id"].as_str().unwrap().to_owned();
    let detail = setup.replay(&replayed).await;
    assert_eq!(outcomes(&detail), ["succeeded", "succeeded"], "{detail}");

    let messages = aws(port, &["receive", &queue, &ids.len().to_string()]);
    assert_eq!(
        messages.as_array().unwrap().len(),
        ids.len(),
        "each event once: {messages}"
    );
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
async fn sns_a_missing_topic_is_a_permanent_error_with_awss_code() {
    let port = free_port();
    let _moto = moto(port, None);
    let missing = format!(
        "arn:aws:sns:{REGION}:123456789012:{}",
        unique("pushrail-missing")
    );
    let setup = Setup::new(&[], "sns", config(port, &missing), credential()).await;
    let ids = setup.publish(&sample_events(2)).await;
    let failed = setup.wait_for("failed", ids.len()).await;
    for d in &failed {
        assert_eq!(outcomes(d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(
            error.starts_with("NotFound: Topic does not exist"),
            "AWS's code and message: {error}"
        );
        assert!(!error.contains("not-checked-here"), "no secret in the log");
    }
}
