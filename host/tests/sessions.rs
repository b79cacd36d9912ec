//! The seam of WIT 0.2: answers per event, warm sessions per destination, plugins of 0.1.0 still
//! delivering, and a sandbox whose looping guests yield.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{eventually, Host, Receiver, Session, Tenant, SECRET};
use serde_json::{json, Value};

/// Publishes `payloads` for `external_id` in one batch request; their event ids, in order.
async fn publish_batch(vendor: &Tenant, external_id: &str, payloads: &[Value]) -> Vec<String> {
    let events: Vec<Value> = payloads
        .iter()
        .map(|p| json!({ "external_id": external_id, "type": "order.created", "payload": p }))
        .collect();
    let (status, body) = vendor
        .call(
            "POST",
            "/v1/events/batch",
            Some(json!({ "events": events })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until no delivery of the customer is pending or delivering; all of them by event id.
async fn settled(customer: &Session, expected: usize) -> BTreeMap<String, Value> {
    eventually("deliveries to settle", Duration::from_secs(30), || async {
        let items = customer.deliveries("?limit=500").await;
        let done = items.len() >= expected
            && items
                .iter()
                .all(|d| matches!(d["status"].as_str(), Some("succeeded" | "failed")));
        done.then(|| {
            items
                .into_iter()
                .map(|d| (d["event_id"].as_str().unwrap().to_owned(), d))
                .collect()
        })
    })
    .await
}

#[tokio::test]
async fn one_refused_webhook_event_fails_alone_and_its_replay_sends_only_it() {
    let receiver = Receiver::start().await;
    let host = Host::start(&["--retry-schedule", "0s"]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("cust").await;
    customer.webhook(&receiver.url, SECRET).await;

    // The receiver refuses the fourth event only.
    receiver.refuse_bodies_with("\"refuse_me\"");
    let payloads: Vec<Value> = (0..8)
        .map(|i| {
            if i == 3 {
                json!({ "i": i, "refuse_me": true })
            } else {
                json!({ "i": i })
            }
        })
        .collect();
    let ids = publish_batch(&vendor, "cust", &payloads).await;
    let deliveries = settled(&customer, 8).await;
    let refused = &deliveries[&ids[3]];
    for (i, id) in ids.iter().enumerate() {
        let want = if i == 3 { "failed" } else { "succeeded" };
        assert_eq!(
            deliveries[id]["status"], want,
            "event {i}: {}",
            deliveries[id]
        );
    }
    let detail = customer.delivery(refused["id"].as_str().unwrap()).await;
    let attempt = &detail["attempts"][0];
    assert_eq!(attempt["outcome"], "permanent_error", "{detail}");
    assert_eq!(attempt["status_code"], 400, "{detail}");
    let received = |id: &str| {
        receiver
            .requests()
            .iter()
            .filter(|r| r.header("webhook-id") == Some(id))
            .count()
    };
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(received(id), 1, "event {i} reached the receiver once");
    }
    assert_eq!(
        common::verify_with_standardwebhooks(SECRET, &receiver.requests()),
        8,
        "each event carries its own valid signature"
    );

    // The receiver takes it now; a replay sends the refused event and nothing else.
    receiver.clear_refusals();
    let (status, body) = customer
        .call(
            "POST",
            "/embed/v1/replays",
            Some(json!({ "delivery_id": refused["id"] })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    eventually("the replay to deliver", Duration::from_secs(20), || async {
        let detail = customer.delivery(refused["id"].as_str().unwrap()).await;
        (detail["status"] == "succeeded").then_some(())
    })
    .await;
    assert_eq!(received(&ids[3]), 2, "the refused event was sent again");
    for id in ids.iter().filter(|id| **id != ids[3]) {
        assert_eq!(received(id), 1, "its batch mates were not sent again");
    }
}

/// The excerpt of the hostile plugin's `session` behaviour: which session, which call.
fn session_and_call(attempt: &Value) -> (String, u64) {
    let excerpt = attempt["response_excerpt"].as_str().unwrap();
    let mut words = excerpt.split(' ');
    assert_eq!(words.next(), Some("session"), "{attempt}");
    let session = words.next().unwrap().to_owned();
    assert_eq!(words.next(), Some("call"));
    (session, words.next().unwrap().parse().unwrap())
}

async fn deliver_one(vendor: &Tenant, customer: &Session, destination: &str) -> Value {
    let event = vendor
        .publish("cust", "order.created", json!({ "n": 1 }))
        .await;
    let event_id = event["event_id"].as_str().unwrap().to_owned();
    let delivery = eventually(
        "the event to be delivered",
        Duration::from_secs(20),
        || async {
            customer
                .deliveries(&format!("?destination_id={destination}"))
                .await
                .into_iter()
                .find(|d| d["event_id"] == event_id.as_str() && d["status"] == "succeeded")
        },
    )
    .await;
    let detail = customer.delivery(delivery["id"].as_str().unwrap()).await;
    detail["attempts"][0].clone()
}

#[tokio::test]
async fn a_destination_keeps_its_session_until_its_config_changes() {
    let host = Host::start_with_test_plugins(&["--retry-schedule", "0s"]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("cust").await;
    let create = |name: &'static str| {
        customer.create(
            "/embed/v1/destinations",
            json!({ "type": "hostile", "name": name, "config": { "behaviour": "session" }, "event_types": [] }),
        )
    };
    let first = create("first").await;
    let first_id = first["id"].as_str().unwrap();

    let a1 = session_and_call(&deliver_one(&vendor, &customer, first_id).await);
    let a2 = session_and_call(&deliver_one(&vendor, &customer, first_id).await);
    assert_eq!(a2.0, a1.0, "the second batch went to the same warm session");
    assert_eq!(a2.1, a1.1 + 1, "and it counted both batches");

    // A second destination of the same type and customer gets a session of its own.
    let second = create("second").await;
    let second_id = second["id"].as_str().unwrap();
    let b = session_and_call(&deliver_one(&vendor, &customer, second_id).await);
    assert_ne!(b.0, a1.0, "another destination never shares a session");
    let a3 = session_and_call(&deliver_one(&vendor, &customer, first_id).await);
    assert_eq!(a3.0, a1.0);

    // A changed config opens a new session on the very next batch.
    let (status, body) = customer
        .call(
            "PATCH",
            &format!("/embed/v1/destinations/{first_id}"),
            Some(json!({ "config": { "behaviour": "session", "url": "changed" } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let a4 = session_and_call(&deliver_one(&vendor, &customer, first_id).await);
    assert_ne!(a4.0, a1.0, "a config change opens a new session");
    assert_eq!(a4.1, 1);

    // Disabled and enabled again: the session was dropped with the disabling.
    for enabled in [false, true] {
        let (status, body) = customer
            .call(
                "PATCH",
                &format!("/embed/v1/destinations/{first_id}"),
                Some(json!({ "enabled": enabled })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let a5 = session_and_call(&deliver_one(&vendor, &customer, first_id).await);
    assert_ne!(a5.0, a4.0, "a disabled destination's session is closed");
}

#[tokio::test]
async fn a_session_that_trapped_is_not_used_again() {
    let host = Host::start_with_test_plugins(&["--retry-schedule", "0s"]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("cust").await;
    let destination = customer
        .create(
            "/embed/v1/destinations",
            json!({ "type": "hostile", "name": "p", "config": { "behaviour": "session-panic" } }),
        )
        .await;
    let id = destination["id"].as_str().unwrap();
    let first = session_and_call(&deliver_one(&vendor, &customer, id).await);
    assert_eq!(first.1, 1);
    // The second batch of that session panics: a failed attempt, and the session is gone.
    let event = vendor
        .publish("cust", "order.created", json!({ "n": 2 }))
        .await;
    let event_id = event["event_id"].as_str().unwrap().to_owned();
    let failed = eventually(
        "the panicking batch to fail",
        Duration::from_secs(20),
        || async {
            customer
                .deliveries("?status=failed")
                .await
                .into_iter()
                .find(|d| d["event_id"] == event_id.as_str())
        },
    )
    .await;
    let detail = customer.delivery(failed["id"].as_str().unwrap()).await;
    assert!(
        detail["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("trapped"),
        "{detail}"
    );
    let third = session_and_call(&deliver_one(&vendor, &customer, id).await);
    assert_ne!(third.0, first.0, "a new session after the trap");
    assert_eq!(third.1, 1);
}

#[tokio::test]
async fn warm_sessions_are_dropped_when_idle_and_beyond_the_cap() {
    let host = Host::start_with_test_plugins(&[
        "--retry-schedule",
        "0s",
        "--warm-sessions",
        "1",
        "--session-idle",
        "1s",
    ])
    .await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("cust").await;
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        let d = customer
            .create(
                "/embed/v1/destinations",
                json!({ "type": "hostile", "name": name, "config": { "behaviour": "session" } }),
            )
            .await;
        ids.push(d["id"].as_str().unwrap().to_owned());
    }
    // Both destinations get each event; one warm session is kept, so the other is closed.
    let first: Vec<_> = {
        let mut out = Vec::new();
        for id in &ids {
            out.push(session_and_call(&deliver_one(&vendor, &customer, id).await));
        }
        out
    };
    let second: Vec<_> = {
        let mut out = Vec::new();
        for id in &ids {
            out.push(session_and_call(&deliver_one(&vendor, &customer, id).await));
        }
        out
    };
    let reused = first
        .iter()
        .zip(&second)
        .filter(|(a, b)| a.0 == b.0)
        .count();
    assert!(
        reused < 2,
        "with one warm slot, both sessions cannot survive: {first:?} {second:?}"
    );

    // Idle past the timeout: the next batch opens a fresh session.
    let before = session_and_call(&deliver_one(&vendor, &customer, &ids[0]).await);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = session_and_call(&deliver_one(&vendor, &customer, &ids[0]).await);
    assert_ne!(after.0, before.0, "an idle session was closed");
    assert_eq!(after.1, 1);
}

#[tokio::test]
async fn an_answer_that_leaves_events_out_retries_them_and_says_why() {
    let host = Host::start_with_test_plugins(&["--retry-schedule", "0s"]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("cust").await;
    customer
        .create(
            "/embed/v1/destinations",
            json!({ "type": "hostile", "name": "omit", "config": { "behaviour": "omit" } }),
        )
        .await;
    let payloads: Vec<Value> = (0..3).map(|i| json!({ "i": i })).collect();
    let ids = publish_batch(&vendor, "cust", &payloads).await;
    let deliveries = settled(&customer, 3).await;
    let succeeded = ids
        .iter()
        .filter(|id| deliveries[*id]["status"] == "succeeded")
        .count();
    assert!(succeeded >= 1, "the answered event was delivered");
    for id in &ids {
        let detail = customer
            .delivery(deliveries[id]["id"].as_str().unwrap())
            .await;
        let attempt = &detail["attempts"][0];
        if detail["status"] == "failed" {
            assert_eq!(attempt["outcome"], "retryable_error", "{detail}");
            assert!(
                attempt["error"]
                    .as_str()
                    .unwrap()
                    .contains("no answer for this event"),
                "{detail}"
            );
        }
    }
    assert!(
        succeeded < 3,
        "the events left out were not taken as delivered"
    );
}

#[tokio::test]
async fn per_event_answers_of_a_batch_are_recorded_each() {
    let host = Host::start_with_test_plugins(&["--retry-schedule", "0s"]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("cust").await;
    customer
        .create(
            "/embed/v1/destinations",
            json!({ "type": "hostile", "name": "partial", "config": { "behaviour": "partial" } }),
        )
        .await;
    let payloads: Vec<Value> = (0..10)
        .map(|i| json!({ "i": i, "refuse": i == 6 }))
        .collect();
    let ids = publish_batch(&vendor, "cust", &payloads).await;
    let deliveries = settled(&customer, 10).await;
    for (i, id) in ids.iter().enumerate() {
        let want = if i == 6 { "failed" } else { "succeeded" };
        assert_eq!(deliveries[id]["status"], want, "event {i}");
        assert_eq!(deliveries[id]["attempt_count"], 1, "event {i}");
    }
}

#[tokio::test]
async fn a_plugin_built_against_wit_0_1_still_loads_and_delivers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = listener.local_addr().unwrap().to_string();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    {
        let lines = lines.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let lines = lines.clone();
                tokio::spawn(async move {
                    let mut text = String::new();
                    let _ = tokio::io::AsyncReadExt::read_to_string(&mut socket, &mut text).await;
                    lines.lock().unwrap().push_str(&text);
                });
            }
        });
    }
    let host = Host::start_with_test_plugins(&["--allow-egress", "127.0.0.0/8"]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("cust").await;
    customer
        .create(
            "/embed/v1/destinations",
            json!({ "type": "legacy", "name": "old", "config": { "peer": peer } }),
        )
        .await;
    let payloads: Vec<Value> = (0..3).map(|i| json!({ "i": i })).collect();
    let ids = publish_batch(&vendor, "cust", &payloads).await;
    let deliveries = settled(&customer, 3).await;
    for id in &ids {
        assert_eq!(deliveries[id]["status"], "succeeded", "{}", deliveries[id]);
    }
    eventually(
        "the peer to read every event",
        Duration::from_secs(10),
        || async {
            let text = lines.lock().unwrap().clone();
            ids.iter()
                .all(|id| text.contains(id.as_str()))
                .then_some(())
        },
    )
    .await;

    // The inspection commands say which WIT each plugin was built against.
    let plugins_dir = host.data_dir.parent().unwrap().join("plugins");
    let output = host
        .command()
        .args(["plugins", "list", "--plugins-dir"])
        .arg(&plugins_dir)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("legacy\t") && l.contains("pushrail:destination@0.1.0")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("webhook\t") && l.contains("pushrail:destination@0.2.0")),
        "{listing}"
    );
}

#[tokio::test]
async fn sixteen_looping_plugins_do_not_stall_the_api_or_another_customers_deliveries() {
    let receiver = Receiver::start().await;
    // The default plugin deadline (30 s): the looping calls run that long unless they yield.
    let host =
        Host::start_with_test_plugins(&["--allow-egress", "127.0.0.0/8", "--retry-schedule", "0s"])
            .await;
    let vendor = host.create_tenant("Acme");
    let victim = vendor.session("victim").await;
    let bystander = vendor.session("bystander").await;
    bystander.webhook(&receiver.url, SECRET).await;
    for i in 0..16 {
        victim
            .create(
                "/embed/v1/destinations",
                json!({ "type": "hostile", "name": format!("loop{i}"), "config": { "behaviour": "loop" } }),
            )
            .await;
    }
    // One event, sixteen looping calls at once.
    vendor
        .publish("victim", "order.created", json!({ "spin": true }))
        .await;
    let started = Instant::now();
    eventually(
        "the looping calls to start",
        Duration::from_secs(10),
        || async {
            let items = victim.deliveries("?status=delivering").await;
            (items.len() >= 16).then_some(())
        },
    )
    .await;

    let mut worst_api = Duration::ZERO;
    let mut worst_delivery = Duration::ZERO;
    for i in 0..5 {
        let asked = Instant::now();
        let event = vendor
            .publish("bystander", "order.created", json!({ "i": i }))
            .await;
        worst_api = worst_api.max(asked.elapsed());
        let event_id = event["event_id"].as_str().unwrap().to_owned();
        eventually(
            "the bystander's event to arrive",
            Duration::from_secs(15),
            || async {
                receiver
                    .requests()
                    .iter()
                    .any(|r| r.header("webhook-id") == Some(event_id.as_str()))
                    .then_some(())
            },
        )
        .await;
        worst_delivery = worst_delivery.max(asked.elapsed());
        let asked = Instant::now();
        let (status, _) = bystander.call("GET", "/embed/v1/destinations", None).await;
        assert_eq!(status, 200);
        worst_api = worst_api.max(asked.elapsed());
    }
    // Everything above happened while the loops were still running.
    let still_looping = victim.deliveries("?status=delivering").await.len();
    println!(
        "16 looping calls: worst API answer {worst_api:?}, worst publish-to-delivered {worst_delivery:?}, {still_looping} calls still looping after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(28),
        "the bystander's work finished before the loops' deadline"
    );
    assert_eq!(still_looping, 16, "the loops were running the whole time");
}

#[tokio::test]
async fn one_destination_never_has_more_batches_in_flight_than_its_cap() {
    let slow = Receiver::start().await;
    slow.set_delay(Duration::from_millis(300));
    // One event per batch, so twelve events are twelve batches of the same destination.
    let host = Host::start(&[
        "--batch-size",
        "1",
        "--destination-concurrency",
        "2",
        "--retry-schedule",
        "0s",
    ])
    .await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("cust").await;
    customer.webhook(&slow.url, SECRET).await;
    let payloads: Vec<Value> = (0..12).map(|i| json!({ "i": i })).collect();
    publish_batch(&vendor, "cust", &payloads).await;
    let deliveries = settled(&customer, 12).await;
    assert!(deliveries.values().all(|d| d["status"] == "succeeded"));
    assert_eq!(slow.count(), 12, "each event sent once");
    assert!(
        slow.max_in_flight() <= 2,
        "at most two batches of the destination at once, saw {}",
        slow.max_in_flight()
    );
    assert_eq!(slow.max_in_flight(), 2, "and the cap was used");
}

#[tokio::test]
async fn the_apis_own_plugin_calls_have_their_own_bounded_capacity() {
    let slow = Receiver::start().await;
    slow.set_delay(Duration::from_millis(500));
    let host = Host::start(&["--api-plugin-calls", "1", "--retry-schedule", "0s"]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("cust").await;
    let destination = customer.webhook(&slow.url, SECRET).await;
    let path = format!(
        "/embed/v1/destinations/{}/test",
        destination["id"].as_str().unwrap()
    );
    // Four test events at once, one API plugin call at a time: each waits its turn and
    // succeeds; the receiver never sees two of them at once.
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            let customer = &customer;
            async move { customer.call("POST", &path, None).await }
        })
        .collect();
    for (status, answer) in futures::future::join_all(calls).await {
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["attempt"]["outcome"], "succeeded", "{answer}");
    }
    assert_eq!(slow.count(), 4);
    assert_eq!(slow.max_in_flight(), 1, "one API plugin call at a time");
}

#[tokio::test]
async fn a_warm_webhook_session_sends_thousands_of_events_without_exhausting_its_instance() {
    // More requests than one instance's resource table holds (4096): anything a request leaves
    // behind in the table would trap the session before the end.
    let receiver = Receiver::start().await;
    let host = Host::start(&["--destination-concurrency", "1"]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("cust").await;
    customer.webhook(&receiver.url, SECRET).await;
    let total = 5000;
    for chunk in 0..total / 1000 {
        let payloads: Vec<Value> = (0..1000)
            .map(|i| json!({ "n": chunk * 1000 + i }))
            .collect();
        publish_batch(&vendor, "cust", &payloads).await;
    }
    eventually(
        "every event to arrive",
        Duration::from_secs(120),
        || async { (receiver.count() >= total).then_some(()) },
    )
    .await;
    let requests = receiver.requests();
    let distinct: std::collections::HashSet<&str> = requests
        .iter()
        .filter_map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(distinct.len(), total, "every event arrived");
    assert_eq!(requests.len(), total, "and none twice (no attempt failed)");
}

#[tokio::test]
async fn a_webhook_endpoint_slower_than_its_timeout_is_a_retryable_timeout() {
    let slow = Receiver::start().await;
    slow.set_delay(Duration::from_secs(4));
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("cust").await;
    let destination = customer
        .create(
            "/embed/v1/destinations",
            json!({ "type": "webhook", "name": "slow", "config": { "url": slow.url, "timeout_ms": 1000 } }),
        )
        .await;
    let (status, answer) = customer
        .call(
            "POST",
            &format!(
                "/embed/v1/destinations/{}/test",
                destination["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let attempt = &answer["attempt"];
    assert_eq!(attempt["outcome"], "retryable_error", "{attempt}");
    assert!(
        attempt["error"].as_str().unwrap().contains("timed out"),
        "{attempt}"
    );
    assert!(
        attempt["duration_ms"].as_i64().unwrap() < 4000,
        "the plugin gave up before the receiver answered: {attempt}"
    );
}
