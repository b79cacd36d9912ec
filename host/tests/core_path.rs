//! The core path, end to end through the real binary: an event in, a signed webhook out.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{eventually, verify_with_standardwebhooks, Host, Receiver, SECRET};
use serde_json::json;

const FAST_RETRIES: &[&str] = &["--retry-schedule", "0s,200ms,200ms,200ms"];

#[tokio::test]
async fn published_events_arrive_signed_and_verifiable() {
    let receiver = Receiver::start().await;
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("cust_42").await;
    let destination = customer.webhook(&receiver.url, SECRET).await;
    assert_eq!(destination["type"], "webhook");
    assert_eq!(destination["enabled"], true);

    let mut event_ids = BTreeSet::new();
    // What each event carried, by event id: a delivery's detail shows it.
    let mut payloads = BTreeMap::new();
    for i in 0..3 {
        let payload = json!({ "order": i, "lines": [{ "sku": "A-1", "qty": 2 }], "note": null });
        let answer = vendor
            .publish("cust_42", "order.created", payload.clone())
            .await;
        assert_eq!(answer["deliveries"], 1);
        event_ids.insert(answer["event_id"].as_str().unwrap().to_owned());
        payloads.insert(answer["event_id"].as_str().unwrap().to_owned(), payload);
    }
    let (status, batch) = vendor
        .call(
            "POST",
            "/v1/events/batch",
            Some(json!({ "events": [
                { "external_id": "cust_42", "type": "order.paid", "payload": { "order": 10 } },
                { "external_id": "cust_42", "type": "order.paid", "payload": { "order": 11 } }
            ]})),
        )
        .await;
    assert_eq!(status, 202, "{batch}");
    for (result, order) in batch["results"].as_array().unwrap().iter().zip([10, 11]) {
        assert_eq!(result["deliveries"], 1);
        event_ids.insert(result["event_id"].as_str().unwrap().to_owned());
        payloads.insert(
            result["event_id"].as_str().unwrap().to_owned(),
            json!({ "order": order }),
        );
    }

    eventually("five webhooks", Duration::from_secs(20), || async {
        (receiver.count() >= 5).then_some(())
    })
    .await;
    let requests = receiver.requests();
    let received: BTreeSet<_> = requests
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(
        received, event_ids,
        "every event arrives once, with its event id as webhook-id"
    );
    assert_eq!(verify_with_standardwebhooks(SECRET, &requests), 5);
    let first = requests
        .iter()
        .find(|r| r.json()["data"]["order"] == 0)
        .unwrap();
    assert_eq!(first.json()["type"], "order.created");
    assert_eq!(first.header("content-type"), Some("application/json"));

    // A wrong secret must not verify: the check above could not pass by accident.
    let verifier = std::panic::catch_unwind(|| {
        verify_with_standardwebhooks("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &requests[..1])
    });
    assert!(verifier.is_err(), "a different secret must be refused");

    let log = eventually(
        "all deliveries succeeded",
        Duration::from_secs(10),
        || async {
            let items = customer.deliveries("?status=succeeded").await;
            (items.len() == 5).then_some(items)
        },
    )
    .await;
    let detail = customer.delivery(log[0]["id"].as_str().unwrap()).await;
    assert_eq!(detail["attempts"][0]["outcome"], "succeeded");
    assert_eq!(detail["attempts"][0]["status_code"], 200);

    // The detail carries what was published (the list does not); each delivery its own event's.
    for item in &log {
        assert!(item.get("payload").is_none(), "the list stays lean: {item}");
        let detail = customer.delivery(item["id"].as_str().unwrap()).await;
        let event_id = detail["event_id"].as_str().unwrap();
        assert_eq!(detail["payload"], payloads[event_id], "{detail}");
    }
}

#[tokio::test]
async fn a_generated_secret_is_created_and_used_but_never_shown() {
    let receiver = Receiver::start().await;
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let destination = customer
        .create(
            "/embed/v1/destinations",
            json!({ "type": "webhook", "name": "d", "config": { "url": receiver.url } }),
        )
        .await;
    let credential_id = destination["credential_id"]
        .as_str()
        .expect("a signing secret was generated");
    let (_, credentials) = customer.call("GET", "/embed/v1/credentials", None).await;
    let listed = &credentials["items"][0];
    assert_eq!(listed["id"], credential_id);
    assert_eq!(listed["kind"], "webhook_secret");
    assert!(listed.get("secret").is_none() && !credentials.to_string().contains("whsec_"));
    vendor.publish("c", "a.b", json!({})).await;
    eventually("a webhook", Duration::from_secs(10), || async {
        (receiver.count() == 1).then_some(())
    })
    .await;
    assert!(receiver.requests()[0]
        .header("webhook-signature")
        .unwrap()
        .starts_with("v1,"));
}

#[tokio::test]
async fn retryable_failures_are_retried_until_success() {
    let receiver = Receiver::start().await;
    receiver.script(&[500, 500]);
    let host = Host::start(FAST_RETRIES).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    customer.webhook(&receiver.url, SECRET).await;
    let event = vendor
        .publish("c", "order.created", json!({ "n": 1 }))
        .await;

    let delivery = eventually(
        "succeeded after retries",
        Duration::from_secs(20),
        || async {
            let items = customer.deliveries("").await;
            items.into_iter().find(|d| d["status"] == "succeeded")
        },
    )
    .await;
    assert_eq!(delivery["event_id"], event["event_id"]);
    let detail = customer.delivery(delivery["id"].as_str().unwrap()).await;
    let attempts = detail["attempts"].as_array().unwrap();
    let outcomes: Vec<_> = attempts
        .iter()
        .map(|a| {
            (
                a["n"].as_i64().unwrap(),
                a["outcome"].clone(),
                a["status_code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (1, json!("retryable_error"), json!(500)),
            (2, json!("retryable_error"), json!(500)),
            (3, json!("succeeded"), json!(200)),
        ]
    );
    assert_eq!(detail["attempt_count"], 3);
    assert_eq!(receiver.count(), 3);
    // Every retry carries the same webhook-id, so receivers can deduplicate.
    let ids: BTreeSet<_> = receiver
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn a_schedule_that_runs_out_ends_failed() {
    let receiver = Receiver::start().await;
    receiver.set_default(503);
    let host = Host::start(&["--retry-schedule", "0s,100ms"]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    customer.webhook(&receiver.url, SECRET).await;
    vendor.publish("c", "x.y", json!({})).await;
    let failed = eventually("failed", Duration::from_secs(20), || async {
        customer
            .deliveries("?status=failed")
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(failed["attempt_count"], 2);
    assert!(failed["next_attempt_at"].is_null());
}

#[tokio::test]
async fn a_permanent_failure_fails_at_once_and_a_replay_delivers_it() {
    let receiver = Receiver::start().await;
    receiver.set_default(400);
    let host = Host::start(FAST_RETRIES).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    customer.webhook(&receiver.url, SECRET).await;
    vendor
        .publish("c", "order.created", json!({ "n": 1 }))
        .await;

    let failed = eventually("failed", Duration::from_secs(20), || async {
        customer
            .deliveries("?status=failed")
            .await
            .into_iter()
            .next()
    })
    .await;
    let id = failed["id"].as_str().unwrap().to_owned();
    let detail = customer.delivery(&id).await;
    assert_eq!(detail["attempts"].as_array().unwrap().len(), 1, "{detail}");
    assert_eq!(detail["attempts"][0]["outcome"], "permanent_error");
    assert_eq!(detail["attempts"][0]["status_code"], 400);

    receiver.set_default(200);
    let (status, replay) = customer
        .call(
            "POST",
            "/embed/v1/replays",
            Some(json!({ "delivery_id": id })),
        )
        .await;
    assert_eq!(status, 202, "{replay}");
    assert_eq!(replay["deliveries"], 1);
    assert!(replay["replay_id"].as_str().unwrap().starts_with("rpl_"));

    let detail = eventually(
        "replayed delivery succeeded",
        Duration::from_secs(20),
        || async {
            let detail = customer.delivery(&id).await;
            (detail["status"] == "succeeded").then_some(detail)
        },
    )
    .await;
    let outcomes: Vec<_> = detail["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].clone())
        .collect();
    assert_eq!(outcomes, vec![json!("permanent_error"), json!("succeeded")]);
    assert_eq!(receiver.count(), 2);
}

#[tokio::test]
async fn a_window_replay_requeues_only_failures_of_that_window() {
    let receiver = Receiver::start().await;
    let host = Host::start(FAST_RETRIES).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    customer.webhook(&receiver.url, SECRET).await;
    receiver.script(&[200]);
    vendor.publish("c", "ok.event", json!({})).await;
    eventually("first delivered", Duration::from_secs(10), || async {
        (receiver.count() == 1).then_some(())
    })
    .await;
    receiver.set_default(422);
    for _ in 0..3 {
        vendor.publish("c", "bad.event", json!({})).await;
    }
    eventually("three failed", Duration::from_secs(20), || async {
        (customer.deliveries("?status=failed").await.len() == 3).then_some(())
    })
    .await;
    receiver.set_default(200);
    let (status, replay) = customer
        .call(
            "POST",
            "/embed/v1/replays",
            Some(json!({ "since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z" })),
        )
        .await;
    assert_eq!(status, 202, "{replay}");
    assert_eq!(replay["deliveries"], 3, "only the failed ones are replayed");
    eventually("all succeeded", Duration::from_secs(20), || async {
        (customer.deliveries("?status=succeeded").await.len() == 4).then_some(())
    })
    .await;
    assert_eq!(receiver.count(), 1 + 3 + 3);
}

#[tokio::test]
async fn killing_the_host_loses_no_event() {
    let receiver = Receiver::start().await;
    receiver.set_default(503);
    let mut host = Host::start(&[
        "--retry-schedule",
        "0s,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms",
        "--lease",
        "2s",
    ])
    .await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    customer.webhook(&receiver.url, SECRET).await;
    let events: Vec<_> = (0..50)
        .map(|i| json!({ "external_id": "c", "type": "order.created", "payload": { "i": i } }))
        .collect();
    let (status, answer) = vendor
        .call(
            "POST",
            "/v1/events/batch",
            Some(json!({ "events": events })),
        )
        .await;
    assert_eq!(status, 202);
    let expected: BTreeSet<String> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event_id"].as_str().unwrap().to_owned())
        .collect();
    eventually("first attempts", Duration::from_secs(20), || async {
        (receiver.count() >= 20).then_some(())
    })
    .await;

    host.kill();
    receiver.set_default(200);
    host.restart().await;

    eventually(
        "every event delivered after the restart",
        Duration::from_secs(60),
        || async {
            let delivered: BTreeSet<String> = receiver
                .requests()
                .iter()
                .filter(|r| r.header("webhook-id").is_some())
                .map(|r| r.header("webhook-id").unwrap().to_owned())
                .collect();
            expected.is_subset(&delivered).then_some(())
        },
    )
    .await;
    let customer = vendor.session("c").await;
    eventually("the log agrees", Duration::from_secs(20), || async {
        (customer
            .deliveries("?status=succeeded&limit=500")
            .await
            .len()
            == 50)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_test_endpoint_delivers_a_real_event_and_logs_it() {
    let receiver = Receiver::start().await;
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let destination = customer.webhook(&receiver.url, SECRET).await;
    let id = destination["id"].as_str().unwrap();
    let (status, answer) = customer
        .call(
            "POST",
            &format!("/embed/v1/destinations/{id}/test"),
            Some(json!({ "payload": { "hello": "world" } })),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["attempt"]["outcome"], "succeeded");
    assert_eq!(answer["attempt"]["n"], 1);
    assert_eq!(receiver.count(), 1);
    assert_eq!(
        receiver.requests()[0].json()["data"],
        json!({ "hello": "world" })
    );
    assert_eq!(
        verify_with_standardwebhooks(SECRET, &receiver.requests()),
        1
    );
    let log = customer.deliveries("?event_type=pushrail.test").await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "succeeded");
    let detail = customer.delivery(log[0]["id"].as_str().unwrap()).await;
    assert_eq!(detail["payload"], json!({ "hello": "world" }));
}

#[tokio::test]
async fn event_type_globs_and_disabled_destinations_decide_fan_out() {
    let orders = Receiver::start().await;
    let everything = Receiver::start().await;
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    customer
        .create("/embed/v1/destinations", json!({ "type": "webhook", "name": "orders", "config": { "url": orders.url }, "event_types": ["order.*"] }))
        .await;
    let all = customer
        .create(
            "/embed/v1/destinations",
            json!({ "type": "webhook", "name": "all", "config": { "url": everything.url } }),
        )
        .await;
    assert_eq!(
        vendor.publish("c", "order.created", json!({})).await["deliveries"],
        2
    );
    assert_eq!(
        vendor.publish("c", "invoice.paid", json!({})).await["deliveries"],
        1
    );
    eventually("deliveries", Duration::from_secs(10), || async {
        (orders.count() == 1 && everything.count() == 2).then_some(())
    })
    .await;
    let (status, patched) = customer
        .call(
            "PATCH",
            &format!("/embed/v1/destinations/{}", all["id"].as_str().unwrap()),
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["enabled"], false);
    assert_eq!(
        vendor.publish("c", "invoice.paid", json!({})).await["deliveries"],
        0
    );
    // Another customer's events never reach this customer's destinations.
    assert_eq!(
        vendor
            .publish("someone-else", "order.created", json!({}))
            .await["deliveries"],
        0
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!((orders.count(), everything.count()), (1, 2));
}

#[tokio::test]
async fn a_disabled_destination_pauses_its_queued_deliveries_and_enabling_it_resumes_them() {
    let receiver = Receiver::start().await;
    receiver.set_default(503);
    let host = Host::start(&["--retry-schedule", "0s,1s,1s,1s,1s,1s,1s,1s"]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let destination = customer.webhook(&receiver.url, SECRET).await;
    let id = destination["id"].as_str().unwrap();
    for n in 0..5 {
        vendor
            .publish("c", "order.created", json!({ "n": n }))
            .await;
    }
    let attempted = |log: &[serde_json::Value]| {
        log.len() == 5 && log.iter().all(|d| d["attempt_count"].as_i64() >= Some(1))
    };
    eventually(
        "a first, refused attempt each",
        Duration::from_secs(20),
        || async { attempted(&customer.deliveries("").await).then_some(()) },
    )
    .await;
    let (status, patched) = customer
        .call(
            "PATCH",
            &format!("/embed/v1/destinations/{id}"),
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    let at_pause = customer.deliveries("").await;
    // Well past the schedule's 1 s retries: nothing is attempted, nothing fails.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let paused = customer.deliveries("").await;
    for (before, now) in at_pause.iter().zip(&paused) {
        assert_eq!(now["status"], "pending", "paused, not failed: {now}");
        let (before, now) = (
            before["attempt_count"].as_i64(),
            now["attempt_count"].as_i64(),
        );
        // A batch already on its way when the destination was disabled may still record one.
        assert!(now <= before.map(|n| n + 1), "no attempts while paused");
    }
    let requests_while_paused = receiver.count();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.count(), requests_while_paused);

    receiver.set_default(200);
    let (status, patched) = customer
        .call(
            "PATCH",
            &format!("/embed/v1/destinations/{id}"),
            Some(json!({ "enabled": true })),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    eventually(
        "the paused deliveries delivered",
        Duration::from_secs(20),
        || async {
            let log = customer.deliveries("").await;
            log.iter().all(|d| d["status"] == "succeeded").then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_destination_failing_for_the_window_is_disabled_with_a_reason_and_its_backlog_waits() {
    let receiver = Receiver::start().await;
    receiver.set_default(503);
    let host = Host::start(&[
        "--auto-disable-after",
        "2s",
        "--retry-schedule",
        "0s,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms",
    ])
    .await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let destination = customer.webhook(&receiver.url, SECRET).await;
    let path = format!(
        "/embed/v1/destinations/{}",
        destination["id"].as_str().unwrap()
    );
    assert_eq!(destination["disabled_reason"], serde_json::Value::Null);
    for n in 0..3 {
        vendor
            .publish("c", "order.created", json!({ "n": n }))
            .await;
    }
    let disabled = eventually(
        "the destination disabled",
        Duration::from_secs(20),
        || async {
            let (_, d) = customer.call("GET", &path, None).await;
            (d["enabled"] == false).then_some(d)
        },
    )
    .await;
    let reason = disabled["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("disabled by Pushrail"), "{reason}");
    assert!(reason.contains("503"), "says what failed: {reason}");
    // Paused, not failed: the backlog waits without further attempts.
    let requests = receiver.count();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        receiver.count() <= requests + 3,
        "no attempts while disabled"
    );
    let paused = customer.deliveries("").await;
    assert_eq!(paused.len(), 3);
    assert!(
        paused.iter().all(|d| d["status"] == "pending"),
        "{paused:?}"
    );

    receiver.set_default(200);
    let (status, enabled) = customer
        .call("PATCH", &path, Some(json!({ "enabled": true })))
        .await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["disabled_reason"], serde_json::Value::Null);
    eventually("the backlog delivered", Duration::from_secs(20), || async {
        let log = customer.deliveries("").await;
        log.iter().all(|d| d["status"] == "succeeded").then_some(())
    })
    .await;
    let (_, healthy) = customer.call("GET", &path, None).await;
    assert_eq!(
        healthy["enabled"], true,
        "a delivery cleared the failing window"
    );
}

#[tokio::test]
async fn an_idempotency_key_answers_the_first_event() {
    let receiver = Receiver::start().await;
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    customer.webhook(&receiver.url, SECRET).await;
    let body =
        json!({ "external_id": "c", "type": "order.created", "payload": {}, "id": "order-1" });
    let (_, first) = vendor.call("POST", "/v1/events", Some(body.clone())).await;
    let (status, second) = vendor.call("POST", "/v1/events", Some(body)).await;
    assert_eq!(status, 202);
    assert_eq!(first, second);
    eventually("one delivery", Duration::from_secs(10), || async {
        (receiver.count() == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 1);
    assert_eq!(customer.deliveries("").await.len(), 1);
}

#[tokio::test]
async fn a_peer_answer_with_nul_bytes_is_logged_without_them() {
    let receiver = Receiver::start().await;
    receiver.set_body(b"ok\0then\0more");
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let destination = customer.webhook(&receiver.url, SECRET).await;
    let id = destination["id"].as_str().unwrap();
    let (status, answer) = customer
        .call("POST", &format!("/embed/v1/destinations/{id}/test"), None)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["attempt"]["outcome"], "succeeded");
    assert_eq!(answer["attempt"]["response_excerpt"], "okthenmore");
    // The engine keeps recording other deliveries.
    vendor.publish("c", "after", json!({})).await;
    eventually(
        "the next delivery logged",
        Duration::from_secs(10),
        || async { (customer.deliveries("?status=succeeded").await.len() == 2).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn the_first_entry_of_the_schedule_delays_the_first_attempt() {
    let receiver = Receiver::start().await;
    let host = Host::start(&["--retry-schedule", "2s,100ms"]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    customer.webhook(&receiver.url, SECRET).await;
    vendor.publish("c", "later", json!({})).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.count(), 0, "not before the first delay");
    let pending = customer.deliveries("?status=pending").await;
    assert!(pending[0]["next_attempt_at"].is_string());
    eventually(
        "delivered after the delay",
        Duration::from_secs(10),
        || async { (receiver.count() == 1).then_some(()) },
    )
    .await;
}

/// The eighteen types of DESTINATIONS.md, each with its credential kinds, as a customer's
/// dashboard lists them.
#[tokio::test]
async fn the_embed_lists_all_eighteen_destination_types() {
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("cust_42").await;
    let (status, types) = customer
        .call("GET", "/embed/v1/destination-types", None)
        .await;
    assert_eq!(status, 200, "{types}");
    let kinds: BTreeMap<String, BTreeSet<String>> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let kinds = t["credential_kinds"]
                .as_array()
                .map(|ks| {
                    ks.iter()
                        .map(|k| k["kind"].as_str().unwrap().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            (t["type"].as_str().unwrap().to_owned(), kinds)
        })
        .collect();
    let expected = [
        ("webhook", &["webhook_secret"][..]),
        ("s3", &["aws_access_key", "aws_role"]),
        ("bigquery", &["gcp_service_account"]),
        ("kafka", &["sasl_plain", "sasl_scram"]),
        ("sqs", &["aws_access_key", "aws_role"]),
        ("sns", &["aws_access_key", "aws_role"]),
        ("kinesis", &["aws_access_key", "aws_role"]),
        ("eventbridge", &["aws_access_key", "aws_role"]),
        ("firehose", &["aws_access_key", "aws_role"]),
        ("gcp_pubsub", &["gcp_service_account"]),
        ("gcs", &["gcp_service_account"]),
        ("azure_blob", &["azure_shared_key", "azure_sas_token"]),
        ("azure_service_bus", &["azure_sas_key"]),
        ("rabbitmq", &["basic"]),
        ("redis_streams", &["basic", "secret"]),
        ("nats", &["nats_token", "basic"]),
        ("mqtt", &["basic"]),
        ("postgres", &["postgres_dsn"]),
    ];
    assert_eq!(
        kinds.keys().collect::<Vec<_>>(),
        expected
            .iter()
            .map(|(t, _)| t.to_string())
            .collect::<BTreeSet<_>>()
            .iter()
            .collect::<Vec<_>>(),
        "{types}"
    );
    for (type_id, expected_kinds) in expected {
        let want: BTreeSet<String> = expected_kinds.iter().map(|k| k.to_string()).collect();
        assert!(
            want.is_subset(&kinds[type_id]),
            "{type_id} takes {want:?}: {types}"
        );
    }
}

/// `/healthz` answers while the process lives; `/readyz` only while the store answers with every
/// migration this build knows and destination plugins are loaded, else 503 with the reasons.
#[tokio::test]
async fn readiness_says_what_is_missing() {
    let client = reqwest::Client::new();
    let get = |host: &Host, path: &str| {
        let url = format!("{}{path}", host.base);
        let client = client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let host = Host::start(&[]).await;
    assert_eq!(get(&host, "/healthz").await, (200, "ok".to_owned()));
    let (status, body) = get(&host, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["destination_types"], 18);

    // The store loses its newest migration (as under an older schema): not ready, and why.
    let db = common::database(&host).await;
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .execute(&db)
    .await
    .unwrap();
    let (status, body) = get(&host, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("the store's migrations are behind this build"),
        "{body}"
    );
    assert_eq!(get(&host, "/healthz").await.0, 200);

    // No plugins in the plugins dir: not ready, and why.
    let empty = tempfile::tempdir().unwrap();
    let bare = Host::start_with(&["--plugins-dir", empty.path().to_str().unwrap()]).await;
    let (status, body) = get(&bare, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no destination plugins are loaded"), "{body}");
}

/// `--log-format json`: every line the host writes is one JSON object (timestamp, level, target,
/// fields) that a log shipper can read, and no secret is among them.
#[tokio::test]
async fn json_logs_are_one_object_per_line_without_secrets() {
    let receiver = Receiver::start().await;
    let host = Host::start(&["--log-format", "json"]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("cust_42").await;
    customer.webhook(&receiver.url, SECRET).await;
    vendor
        .publish("cust_42", "order.created", json!({ "n": 1 }))
        .await;
    eventually("the delivery", Duration::from_secs(10), || async {
        (receiver.count() == 1).then_some(())
    })
    .await;
    let log = host.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 3, "{log}");
    for line in &lines {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(entry.get(key).is_some(), "{key} missing: {line}");
        }
    }
    assert!(!log.contains(SECRET), "the signing secret is never logged");
    assert!(!log.contains("whsec_"), "no signing secret in the log");
}
