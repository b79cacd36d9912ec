//! `gcp_pubsub` against the Pub/Sub emulator of the preinstalled Google Cloud CLI, started by each
//! test on a free port, behind `peer_gcp.py serve` (the token endpoint of the JWT-bearer flow and
//! a gate that lets through only tokens it issued: the emulator checks none). Messages are pulled
//! back over the emulator's REST API and compared.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{json, Value};

use crate::google::Gate;
use crate::support::{
    assert_batched, assert_same_events, fast_retries, free_port, outcomes, python, sample_events,
    unique, Peer, Setup,
};

const SCOPE: &str = "https://www.googleapis.com/auth/pubsub";
const PROJECT: &str = "pushrail-test";

fn emulator_bin() -> String {
    std::env::var("PUSHRAIL_PUBSUB_EMULATOR").unwrap_or_else(|_| {
        "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator".to_owned()
    })
}

/// The emulator, the gate in front of it, and a topic with a pull subscription.
struct PubSub {
    gate: Gate,
    _emulator: Peer,
    emulator_port: u16,
    topic: String,
    subscription: String,
}

impl PubSub {
    fn start() -> PubSub {
        let bin = emulator_bin();
        assert!(
            std::path::Path::new(&bin).exists(),
            "the Pub/Sub emulator of the Google Cloud CLI is not at {bin} (set PUSHRAIL_PUBSUB_EMULATOR)"
        );
        let emulator_port = free_port();
        let mut command = Command::new(bin);
        command.args(["--host=127.0.0.1", &format!("--port={emulator_port}")]);
        let mut emulator = Peer::spawn("pubsub-emulator", command);
        emulator.wait_for_port(emulator_port);
        let topic = unique("orders");
        let subscription = unique("reader");
        python(
            "peer_gcp.py",
            &[
                "pubsub-setup",
                &emulator_port.to_string(),
                PROJECT,
                &topic,
                &subscription,
            ],
        );
        PubSub {
            gate: Gate::start(&emulator_port.to_string(), SCOPE),
            _emulator: emulator,
            emulator_port,
            topic,
            subscription,
        }
    }

    fn config(&self, ordering_key: Option<&str>) -> Value {
        let mut config =
            json!({ "project_id": PROJECT, "topic": self.topic, "endpoint": self.gate.endpoint() });
        if let Some(key) = ordering_key {
            config["ordering_key"] = json!(key);
        }
        config
    }

    /// Pulls until `n` messages came (and a second more, to catch duplicates).
    fn pull(&self, n: usize) -> Vec<Value> {
        python(
            "peer_gcp.py",
            &[
                "pubsub-pull",
                &self.emulator_port.to_string(),
                PROJECT,
                &self.subscription,
                &n.to_string(),
            ],
        )
        .as_array()
        .unwrap()
        .clone()
    }
}

/// The messages by event id: (type, payload), with the attributes and the record agreeing; no
/// event twice.
fn received(messages: &[Value]) -> BTreeMap<String, (String, Value)> {
    let mut out = BTreeMap::new();
    for message in messages {
        let record = &message["record"];
        let id = record["id"].as_str().unwrap().to_owned();
        assert_eq!(
            message["attributes"],
            json!({ "pushrail-event-id": id, "pushrail-event-type": record["type"] }),
            "{message}"
        );
        let previous = out.insert(
            id.clone(),
            (
                record["type"].as_str().unwrap().to_owned(),
                record["payload"].clone(),
            ),
        );
        assert!(previous.is_none(), "{id} was published twice: {messages:?}");
    }
    out
}

fn one_batch() -> Vec<String> {
    vec!["--batch-linger".to_owned(), "300ms".to_owned()]
}

#[tokio::test]
async fn gcp_pubsub_publishes_a_batch_with_attributes_and_ordering_keys_and_keeps_its_token() {
    let pubsub = PubSub::start();
    let setup = Setup::new(
        &one_batch(),
        "gcp_pubsub",
        pubsub.config(Some("{{event.type}}")),
        pubsub.gate.credential(),
    )
    .await;
    let events = sample_events(6);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    assert_batched(&delivered);
    for d in &delivered {
        assert_eq!(outcomes(d), ["succeeded"], "{d}");
        let excerpt = d["attempts"][0]["response_excerpt"].as_str().unwrap();
        assert!(excerpt.starts_with("messageId "), "{excerpt}");
        assert!(
            excerpt.ends_with(&format!(" on projects/{PROJECT}/topics/{}", pubsub.topic)),
            "{excerpt}"
        );
    }
    let messages = pubsub.pull(ids.len());
    assert_same_events(&ids, &events, &received(&messages));
    for message in &messages {
        assert_eq!(
            message["ordering_key"], message["record"]["type"],
            "{message}"
        );
    }

    let more = sample_events(3);
    let more_ids = setup.publish(&more).await;
    setup
        .wait_for("succeeded", ids.len() + more_ids.len())
        .await;
    assert_same_events(&more_ids, &more, &received(&pubsub.pull(more_ids.len())));
    let stats = pubsub.gate.stats().await;
    assert_eq!(stats["tokens_issued"], 1, "the token is kept: {stats}");
    assert_eq!(pubsub.gate.write_statuses().await, [200, 200], "{stats}");
}

#[tokio::test]
async fn gcp_pubsub_a_refused_publish_is_retried_and_each_message_arrives_once() {
    let pubsub = PubSub::start();
    pubsub.gate.control("POST", "/control/fail?n=1", None).await;
    let mut args = one_batch();
    args.extend(["--retry-schedule".to_owned(), "0s,0s,0s".to_owned()]);
    let setup = Setup::new(
        &args,
        "gcp_pubsub",
        pubsub.config(None),
        pubsub.gate.credential(),
    )
    .await;
    let events = sample_events(5);
    let ids = setup.publish(&events).await;
    for d in setup.wait_for("succeeded", ids.len()).await {
        assert_eq!(outcomes(&d), ["retryable_error", "succeeded"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(
            error.starts_with(
                "backendError: The service is currently unavailable. (HTTP 503); publish projects/"
            ),
            "{error}"
        );
    }
    assert_eq!(pubsub.gate.write_statuses().await, [503, 200]);
    let messages = pubsub.pull(ids.len());
    assert_eq!(messages.len(), ids.len(), "{messages:?}");
    assert_same_events(&ids, &events, &received(&messages));
    assert!(messages.iter().all(|m| m["ordering_key"].is_null()));
}

#[tokio::test]
async fn gcp_pubsub_a_missing_topic_is_a_permanent_error() {
    let pubsub = PubSub::start();
    let mut config = pubsub.config(None);
    config["topic"] = json!(unique("missing"));
    let setup = Setup::new(
        &fast_retries(),
        "gcp_pubsub",
        config,
        pubsub.gate.credential(),
    )
    .await;
    let ids = setup.publish(&sample_events(2)).await;
    for d in setup.wait_for("failed", ids.len()).await {
        assert_eq!(outcomes(&d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(error.contains("(HTTP 404); publish projects/"), "{error}");
        assert_eq!(d["attempts"][0]["status_code"], 404, "{d}");
    }
}
