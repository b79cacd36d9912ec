//! `azure_service_bus` against `peer_service_bus.py`, a fake of one Service Bus namespace's REST
//! send API started by each test on a free port (no emulator runs here). The fake checks what
//! Service Bus checks: the SAS token's HMAC under the policy's key, its expiry and its resource
//! URI, the policy's Send right, the request's shape (content type, a JSON array of messages with
//! a `Body` and `BrokerProperties.MessageId`); it drops a MessageId it already has on an entity
//! with duplicate detection on, and serves what it stored for reading back.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::workspace;
use crate::support::{
    assert_batched, assert_same_events, fast_retries, free_port, outcomes, sample_events, unique,
    Peer, Setup,
};

const NAMESPACE: &str = "pushrail-test";
const POLICY: &str = "send";
/// An entity with duplicate detection on, and one without.
const ORDERS: &str = "orders";
const PLAIN: &str = "events/plain";

fn python_bin() -> String {
    std::env::var("PUSHRAIL_TEST_PYTHON").expect("PUSHRAIL_TEST_PYTHON is unset")
}

/// The fake namespace, and the name and key of the policy the tests sign with (a fresh key per
/// test).
struct ServiceBus {
    _peer: Peer,
    port: u16,
    policy: &'static str,
    key: String,
}

impl ServiceBus {
    /// The namespace with a `send` policy that has the Send right.
    fn start() -> ServiceBus {
        Self::start_as(POLICY, &["Send"])
    }

    /// The namespace with policy `policy` holding `rights`, and a `manage` policy of another key.
    fn start_as(policy: &'static str, rights: &[&str]) -> ServiceBus {
        let port = free_port();
        let key = fresh_key();
        let config = json!({
            "namespace": NAMESPACE,
            "policies": {
                policy: { "key": key, "rights": rights },
                "manage": { "key": fresh_key(), "rights": ["Manage", "Send", "Listen"] }
            },
            "entities": {
                ORDERS: { "duplicate_detection": true },
                PLAIN: { "duplicate_detection": false }
            }
        });
        let mut command = Command::new(python_bin());
        command
            .arg(workspace().join("host/tests/peers/peer_service_bus.py"))
            .args(["serve", &port.to_string(), &config.to_string()]);
        let mut peer = Peer::spawn("peer_service_bus", command);
        peer.wait_for_port(port);
        ServiceBus {
            _peer: peer,
            port,
            policy,
            key,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn config(&self, entity: &str) -> Value {
        json!({ "namespace": NAMESPACE, "entity": entity, "endpoint": self.endpoint() })
    }

    fn credential(&self, key: &str) -> Option<(&'static str, Value)> {
        Some((
            "azure_sas_key",
            json!({ "key_name": self.policy, "key": key }),
        ))
    }

    async fn control(&self, method: &str, path: &str) -> Value {
        let url = format!("{}{path}", self.endpoint());
        let client = reqwest::Client::new();
        let request = if method == "POST" {
            client.post(url).body("")
        } else {
            client.get(url)
        };
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    async fn messages(&self, entity: &str) -> Vec<Value> {
        let messages = self
            .control("GET", &format!("/control/messages?entity={entity}"))
            .await;
        messages.as_array().unwrap().clone()
    }

    async fn stats(&self) -> Value {
        self.control("GET", "/control/stats").await
    }
}

/// A policy key as the portal shows one: 44 characters of base64.
fn fresh_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(unique("sas-key")))
}

/// Events published together are handed to the plugin together: one batch, one request.
fn one_batch() -> Vec<String> {
    vec!["--batch-linger".to_owned(), "300ms".to_owned()]
}

/// What the entity holds, by MessageId: (type, payload) from each message's body, after checking
/// that the MessageId, the body's `id` and the `pushrail-event-id` property agree and that no
/// event is there twice.
fn received(messages: &[Value]) -> BTreeMap<String, (String, Value)> {
    let mut out = BTreeMap::new();
    for message in messages {
        let broker = &message["BrokerProperties"];
        let user = &message["UserProperties"];
        let id = broker["MessageId"].as_str().unwrap().to_owned();
        let record: Value = serde_json::from_str(message["Body"].as_str().unwrap()).unwrap();
        assert_eq!(record["id"], id.as_str(), "{message}");
        assert_eq!(user["pushrail-event-id"], id.as_str(), "{message}");
        assert_eq!(user["pushrail-event-type"], record["type"], "{message}");
        assert_eq!(broker["ContentType"], "application/json", "{message}");
        assert!(record["occurred_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            message["RequestContentType"], "application/vnd.microsoft.servicebus.json",
            "sent with Send Message Batch: {message}"
        );
        let previous = out.insert(
            id.clone(),
            (
                record["type"].as_str().unwrap().to_owned(),
                record["payload"].clone(),
            ),
        );
        assert!(previous.is_none(), "{id} was stored twice: {messages:?}");
    }
    out
}

/// The statuses the fake answered sends with, in order.
fn statuses(stats: &Value) -> Vec<i64> {
    stats["sends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn azure_service_bus_sends_a_batch_with_message_ids_and_properties_and_keeps_its_token() {
    let bus = ServiceBus::start();
    let setup = Setup::new(
        &one_batch(),
        "azure_service_bus",
        bus.config(PLAIN),
        bus.credential(&bus.key),
    )
    .await;
    let events = sample_events(6);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    assert_batched(&delivered);
    for d in &delivered {
        assert_eq!(outcomes(d), ["succeeded"], "{d}");
        assert_eq!(d["attempts"][0]["status_code"], 201, "{d}");
        let excerpt = d["attempts"][0]["response_excerpt"].as_str().unwrap();
        assert!(
            excerpt.starts_with(&format!(
                "sent to {}/{PLAIN} in a batch of ",
                bus.endpoint()
            )),
            "{excerpt}"
        );
    }
    let messages = bus.messages(PLAIN).await;
    assert_eq!(messages.len(), 6);
    assert_same_events(&ids, &events, &received(&messages));

    // A second batch: the session's token again.
    let more = sample_events(3);
    let more_ids = setup.publish(&more).await;
    setup.wait_for("succeeded", 9).await;
    let stats = bus.stats().await;
    let sends = stats["sends"].as_array().unwrap();
    assert!(sends.len() >= 2, "{stats}");
    assert!(statuses(&stats).iter().all(|s| *s == 201), "{stats}");
    assert!(
        sends
            .iter()
            .all(|s| s["skn"] == POLICY && s["se"] == sends[0]["se"]),
        "one token, kept by the session: {stats}"
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expiry = sends[0]["se"].as_i64().unwrap();
    assert!(
        (now + 3000..=now + 3700).contains(&expiry),
        "valid for about an hour: {expiry} at {now}"
    );
    let mut all_ids = ids;
    all_ids.extend(more_ids);
    let mut all_events = events;
    all_events.extend(more);
    assert_same_events(&all_ids, &all_events, &received(&bus.messages(PLAIN).await));
}

#[tokio::test]
async fn azure_service_bus_an_answer_lost_after_the_write_is_retried_and_duplicate_detection_drops_the_copy(
) {
    let bus = ServiceBus::start();
    bus.control("POST", "/control/lose?n=1").await;
    let mut args = one_batch();
    args.extend(["--retry-schedule".to_owned(), "0s,0s,0s".to_owned()]);
    let setup = Setup::new(
        &args,
        "azure_service_bus",
        bus.config(ORDERS),
        bus.credential(&bus.key),
    )
    .await;
    let events = sample_events(5);
    let ids = setup.publish(&events).await;
    for d in setup.wait_for("succeeded", ids.len()).await {
        assert_eq!(outcomes(&d), ["retryable_error", "succeeded"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!(
                "InternalServerError: The server was unable to process the request; please retry the operation. (HTTP 500); send to {}/{ORDERS}",
                bus.endpoint()
            )),
            "{error}"
        );
        assert_eq!(d["attempts"][0]["status_code"], 500, "{d}");
        assert_eq!(d["attempts"][1]["status_code"], 201, "{d}");
    }
    let stats = bus.stats().await;
    let statuses = statuses(&stats);
    assert_eq!(statuses[0], 500, "{stats}");
    assert!(statuses[1..].iter().all(|s| *s == 201), "{stats}");
    // The retry sent the same MessageIds (in one request or several), and the entity dropped
    // every one of them as a duplicate.
    let message_ids = |sends: &[Value]| {
        let mut ids: Vec<String> = sends
            .iter()
            .flat_map(|s| s["message_ids"].as_array().unwrap().clone())
            .map(|id| id.as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let sends = stats["sends"].as_array().unwrap();
    let mut sorted_ids = ids.clone();
    sorted_ids.sort();
    assert_eq!(message_ids(&sends[..1]), sorted_ids, "{stats}");
    assert_eq!(message_ids(&sends[1..]), sorted_ids, "{stats}");
    assert_eq!(stats["duplicates_dropped"], 5, "{stats}");
    let messages = bus.messages(ORDERS).await;
    assert_eq!(messages.len(), 5, "each event stored once");
    assert_same_events(&ids, &events, &received(&messages));
}

#[tokio::test]
async fn azure_service_bus_a_wrong_key_is_a_permanent_error_with_the_services_detail() {
    let bus = ServiceBus::start();
    let wrong = fresh_key();
    let setup = Setup::new(
        &fast_retries(),
        "azure_service_bus",
        bus.config(ORDERS),
        bus.credential(&wrong),
    )
    .await;
    setup.publish(&sample_events(2)).await;
    for d in setup.wait_for("failed", 2).await {
        assert_eq!(outcomes(&d), ["permanent_error"], "{d}");
        let attempt = &d["attempts"][0];
        let error = attempt["error"].as_str().unwrap();
        assert_eq!(
            error,
            format!(
                "InvalidSignature: The token has an invalid signature. (HTTP 401); send to {}/{ORDERS}",
                bus.endpoint()
            )
        );
        assert_eq!(attempt["status_code"], 401, "{attempt}");
        let logged = d.to_string();
        for secret in [
            wrong.as_str(),
            bus.key.as_str(),
            "SharedAccessSignature",
            "sig=",
        ] {
            assert!(!logged.contains(secret), "no key material: {logged}");
        }
    }
    let stats = bus.stats().await;
    let sends = stats["sends"].as_array().unwrap();
    assert!(!sends.is_empty(), "{stats}");
    assert!(
        sends
            .iter()
            .all(|s| s["status"] == 401 && s["reason"] == "bad_signature" && s["skn"].is_null()),
        "{stats}"
    );
    assert!(bus.messages(ORDERS).await.is_empty(), "nothing was stored");
}

#[tokio::test]
async fn azure_service_bus_a_missing_entity_is_a_permanent_error() {
    let bus = ServiceBus::start();
    let setup = Setup::new(
        &fast_retries(),
        "azure_service_bus",
        bus.config("missing"),
        bus.credential(&bus.key),
    )
    .await;
    let ids = setup.publish(&sample_events(2)).await;
    for d in setup.wait_for("failed", ids.len()).await {
        assert_eq!(outcomes(&d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert_eq!(
            error,
            format!(
                "The messaging entity 'sb://{NAMESPACE}.servicebus.windows.net/missing' could not be found. To know more visit https://aka.ms/sbResourceMgrExceptions. (HTTP 404); send to {}/missing",
                bus.endpoint()
            )
        );
        assert_eq!(d["attempts"][0]["status_code"], 404, "{d}");
    }
    let stats = bus.stats().await;
    assert!(
        stats["sends"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == 404 && s["skn"] == POLICY),
        "the token was accepted, the entity is not there: {stats}"
    );
}

#[tokio::test]
async fn azure_service_bus_a_policy_without_the_send_right_is_a_permanent_error() {
    let bus = ServiceBus::start_as("listen", &["Listen"]);
    let setup = Setup::new(
        &fast_retries(),
        "azure_service_bus",
        bus.config(ORDERS),
        bus.credential(&bus.key),
    )
    .await;
    setup.publish(&sample_events(1)).await;
    let failed = setup.wait_for("failed", 1).await;
    assert_eq!(outcomes(&failed[0]), ["permanent_error"], "{}", failed[0]);
    let error = failed[0]["attempts"][0]["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "Unauthorized access. 'Send' claim(s) are required to perform this operation. (HTTP 401)"
        ),
        "{error}"
    );
    assert!(bus.messages(ORDERS).await.is_empty(), "nothing was stored");
}

#[tokio::test]
async fn azure_service_bus_a_message_over_the_size_limit_goes_alone_and_fails_alone() {
    let bus = ServiceBus::start();
    let setup = Setup::new(
        &one_batch(),
        "azure_service_bus",
        bus.config(PLAIN),
        bus.credential(&bus.key),
    )
    .await;
    // A payload the API takes (under 256 KiB) whose message, with the record around it and its
    // properties, is over the standard tier's 256 KiB.
    let mut events = sample_events(4);
    events[1].1 = json!({ "blob": "x".repeat(262_100) });
    let ids = setup.publish(&events).await;
    let settled = setup.settle(ids.len()).await;
    for d in &settled {
        let refused = d["event_id"] == ids[1].as_str();
        assert_eq!(
            d["status"],
            if refused { "failed" } else { "succeeded" },
            "{d}"
        );
        let detail = setup.customer.delivery(d["id"].as_str().unwrap()).await;
        if refused {
            assert_eq!(outcomes(&detail), ["permanent_error"], "{detail}");
            let attempt = &detail["attempts"][0];
            let error = attempt["error"].as_str().unwrap();
            assert!(
                error.starts_with("MessageSizeExceeded: The received message (size: "),
                "{error}"
            );
            assert!(error.contains("(HTTP 413); send to "), "{error}");
            assert_eq!(attempt["status_code"], 413, "{attempt}");
        }
    }
    let stats = bus.stats().await;
    let refused: Vec<&Value> = stats["sends"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == 413)
        .collect();
    assert_eq!(refused.len(), 1, "the large message went alone: {stats}");
    let mut expected = ids.clone();
    expected.remove(1);
    let mut others = events.clone();
    others.remove(1);
    assert_same_events(&expected, &others, &received(&bus.messages(PLAIN).await));
}
