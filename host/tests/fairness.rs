//! Fair scheduling and endpoint health: one customer's backlog at a slow endpoint does not hold
//! back another customer's event, and a failing endpoint's circuit opens, is probed one delivery
//! at a time, and closes on the first success. Asserts the order of facts only (the other event is
//! delivered while the backlog is still queued); the delay is printed, not asserted.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{eventually, Host, Receiver, SECRET};
use serde_json::json;

const BACKLOG: usize = 20_000;
const BATCH: usize = 1_000;

/// Queues `BACKLOG` events for customer `a` (a receiver taking 2 s per request), then publishes
/// one event for customer `b` through `b_host`, and checks it is delivered first.
async fn backlog_does_not_hold_back_another_customer(a_host: &Host, b_host: &Host, what: &str) {
    let slow = Receiver::start().await;
    slow.set_delay(Duration::from_secs(2));
    let fast = Receiver::start().await;
    let vendor = a_host.create_tenant("Acme");
    let a = vendor.session("a").await;
    a.webhook(&slow.url, SECRET).await;
    let b = vendor.session("b").await;
    b.webhook(&fast.url, SECRET).await;

    for round in 0..BACKLOG / BATCH {
        let events: Vec<_> = (0..BATCH)
            .map(|i| json!({ "external_id": "a", "type": "order.created", "payload": { "n": round * BATCH + i } }))
            .collect();
        let (status, answer) = vendor
            .call(
                "POST",
                "/v1/events/batch",
                Some(json!({ "events": events })),
            )
            .await;
        assert_eq!(status, 202, "{answer}");
    }
    eventually("a's backlog under way", Duration::from_secs(60), || async {
        (slow.count() > 0).then_some(())
    })
    .await;

    let published = Instant::now();
    let (status, answer) = common::call(
        &reqwest::Client::new(),
        "POST",
        &format!("{}/v1/events", b_host.base),
        &vendor.api_key,
        Some(&json!({ "external_id": "b", "type": "order.created", "payload": { "n": "b" } })),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    while fast.count() == 0 {
        if published.elapsed() > Duration::from_secs(60) {
            let log = a_host.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "b's event was not delivered within 60 s; b's deliveries: {:?}\nhost log (last lines first):\n{}",
                b.deliveries("").await,
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delay = published.elapsed();
    let a_delivered = slow.count();
    println!(
        "{what}: b's event delivered {delay:?} after it was published, with {a_delivered} of a's {BACKLOG} delivered"
    );
    assert!(
        a_delivered < BACKLOG / 2,
        "a's backlog was still queued when b's event went out ({a_delivered} delivered)"
    );
    assert_eq!(fast.count(), 1, "b's event delivered once");
    let b_deliveries = b.deliveries("").await;
    assert_eq!(b_deliveries.len(), 1);
    assert_eq!(b_deliveries[0]["status"], "succeeded", "{:?}", b_deliveries);
    let a_pending = a.deliveries("?status=pending&limit=1").await;
    assert!(!a_pending.is_empty(), "a still has queued deliveries");
}

#[tokio::test]
async fn a_slow_backlog_does_not_hold_back_another_customers_event() {
    let host = Host::start(&[]).await;
    backlog_does_not_hold_back_another_customer(&host, &host, "one host").await;
}

#[tokio::test]
async fn a_slow_backlog_does_not_hold_back_another_customers_event_with_two_hosts() {
    let first = Host::start_postgres(&[]).await;
    let second = Host::join(&first, &["--allow-egress", "127.0.0.0/8"]).await;
    backlog_does_not_hold_back_another_customer(&first, &second, "two hosts on PostgreSQL").await;
}

/// A destination whose batches all fail opens its circuit: its queued deliveries wait without an
/// attempt (shown as waiting on the open circuit), one delivery at a time probes the endpoint,
/// another customer's traffic flows beside it, and the first success closes the circuit and
/// delivers the backlog: a delivery that waited from the start was sent once more at most
/// (had it been a failed probe) before it succeeded.
#[tokio::test]
async fn a_failing_endpoint_opens_its_circuit_is_probed_one_at_a_time_and_recovers() {
    const EVENTS: usize = 200;
    let failing = Receiver::start().await;
    failing.set_default(503);
    let healthy = Receiver::start().await;
    let schedule = format!("0s,{}", vec!["300ms"; 60].join(","));
    let host = Host::start(&[
        "--circuit-after",
        "2",
        "--batch-size",
        "5",
        "--retry-schedule",
        &schedule,
    ])
    .await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let destination = customer.webhook(&failing.url, SECRET).await;
    let path = format!(
        "/embed/v1/destinations/{}",
        destination["id"].as_str().unwrap()
    );
    let neighbour = vendor.session("d").await;
    neighbour.webhook(&healthy.url, SECRET).await;

    let events: Vec<_> = (0..EVENTS)
        .map(|i| json!({ "external_id": "c", "type": "order.created", "payload": { "n": i } }))
        .collect();
    let (status, answer) = vendor
        .call(
            "POST",
            "/v1/events/batch",
            Some(json!({ "events": events })),
        )
        .await;
    assert_eq!(status, 202, "{answer}");

    let opened = eventually("the circuit to open", Duration::from_secs(30), || async {
        let (_, d) = customer.call("GET", &path, None).await;
        (d["circuit"] == "open").then_some(d)
    })
    .await;
    assert!(opened["next_probe_at"].is_string(), "{opened}");

    // Batches claimed before the circuit opened finish their attempt; then at most the one probe
    // is out at a time.
    let waiting = eventually(
        "the batches sent before the circuit opened to settle",
        Duration::from_secs(30),
        || async {
            let all = customer.deliveries("?limit=500").await;
            (all.iter().filter(|d| d["status"] == "delivering").count() <= 1).then_some(all)
        },
    )
    .await;
    // Probes take a while to answer now: two at once would show at the receiver.
    failing.set_delay(Duration::from_millis(200));
    failing.reset_max_in_flight();
    let before = failing.count();
    let untried: BTreeSet<String> = waiting
        .iter()
        .filter(|d| d["attempt_count"] == 0)
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        untried.len() >= EVENTS / 4,
        "most of the backlog was never tried: {waiting:?}"
    );
    let probing: Vec<&serde_json::Value> = waiting
        .iter()
        .filter(|d| d["status"] == "delivering")
        .collect();
    assert!(probing.len() <= 1, "one probe at a time: {probing:?}");
    for d in waiting
        .iter()
        .filter(|d| d["attempt_count"] == 0 && d["status"] != "delivering")
    {
        assert_eq!(d["status"], "pending", "{d}");
        assert_eq!(d["waiting_on"], "open_circuit", "{d}");
        assert!(d["next_attempt_at"].is_string(), "{d}");
    }

    // The neighbour's traffic is not held up meanwhile.
    let answer = vendor
        .publish("d", "order.created", json!({ "neighbour": true }))
        .await;
    assert_eq!(answer["deliveries"], 1, "{answer}");
    eventually("the neighbour's event", Duration::from_secs(10), || async {
        (healthy.count() == 1).then_some(())
    })
    .await;

    eventually("a few probes", Duration::from_secs(30), || async {
        (failing.count() >= before + 4).then_some(())
    })
    .await;
    assert_eq!(
        failing.max_in_flight(),
        1,
        "an open circuit is probed one delivery at a time"
    );
    // No attempt is invented for a waiting delivery: the log holds exactly what was sent.
    let attempts: i64 = customer
        .deliveries("?limit=500")
        .await
        .iter()
        .map(|d| d["attempt_count"].as_i64().unwrap())
        .sum();
    let sent = failing.count() as i64;
    assert!(
        attempts == sent || attempts + 1 == sent,
        "{attempts} attempts logged, {sent} requests received (one may be in flight)"
    );

    // The endpoint recovers: the next probe succeeds, the circuit closes, the backlog flows.
    failing.set_delay(Duration::ZERO);
    failing.set_default(200);
    let done = eventually("the backlog delivered", Duration::from_secs(60), || async {
        let all = customer.deliveries("?limit=500").await;
        (all.len() == EVENTS && all.iter().all(|d| d["status"] == "succeeded")).then_some(all)
    })
    .await;
    let (_, d) = customer.call("GET", &path, None).await;
    assert_eq!(d["circuit"], "closed", "{d}");
    assert!(d["next_probe_at"].is_null(), "{d}");
    for delivery in done
        .iter()
        .filter(|d| untried.contains(d["id"].as_str().unwrap()))
    {
        let detail = customer.delivery(delivery["id"].as_str().unwrap()).await;
        let outcomes: Vec<&str> = detail["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["outcome"].as_str().unwrap())
            .collect();
        assert!(
            outcomes.last() == Some(&"succeeded") && outcomes.len() <= 2,
            "{detail}"
        );
        assert!(detail.get("waiting_on").is_none(), "{detail}");
    }
}

/// The vendor registers an operator endpoint and hears, through Pushrail's own engine and signed
/// with Standard Webhooks, about its customers' destinations: a circuit opening
/// (`destination.failing`), a delivery out of retries (`delivery.exhausted`), a destination
/// disabled (`destination.disabled`), a refused credential (`credential.rejected`) and a recovery
/// (`destination.recovered`), each naming the customer's external id and the destination, never a
/// secret. No session can be minted for the reserved operator sub-tenant.
#[tokio::test]
async fn operator_events_reach_the_vendor_signed() {
    let operator = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.set_default(503);
    let refusing = Receiver::start().await;
    refusing.set_default(401);
    let flaky = Receiver::start().await;
    flaky.script(&[503]);
    let host = Host::start(&[
        "--circuit-after",
        "1",
        "--auto-disable-after",
        "1500ms",
        "--retry-schedule",
        "0s,200ms,200ms",
    ])
    .await;
    let vendor = host.create_tenant("Acme");

    let (status, registered) = vendor
        .call(
            "PUT",
            "/v1/operator-webhook",
            Some(json!({ "url": operator.url })),
        )
        .await;
    assert_eq!(status, 201, "{registered}");
    let secret = registered["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{registered}");
    let (status, again) = vendor
        .call(
            "PUT",
            "/v1/operator-webhook",
            Some(json!({ "url": operator.url })),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert!(
        again.get("secret").is_none(),
        "the secret is shown once: {again}"
    );
    let (status, shown) = vendor.call("GET", "/v1/operator-webhook", None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["url"], operator.url.as_str());
    let (status, refused) = vendor
        .call(
            "POST",
            "/v1/sessions",
            Some(json!({ "external_id": "pushrail:operator" })),
        )
        .await;
    assert!(status == 400 || status == 422, "{status} {refused}");

    let mut destinations = std::collections::BTreeMap::new();
    for (customer, receiver) in [("a", &failing), ("b", &refusing), ("c", &flaky)] {
        let session = vendor.session(customer).await;
        let destination = session.webhook(&receiver.url, SECRET).await;
        destinations.insert(customer, destination["id"].as_str().unwrap().to_owned());
        vendor
            .publish(customer, "order.created", json!({ "customer": customer }))
            .await;
    }

    let wanted = [
        ("destination.failing", "a"),
        ("delivery.exhausted", "a"),
        ("destination.disabled", "a"),
        ("credential.rejected", "b"),
        ("destination.failing", "c"),
        ("destination.recovered", "c"),
    ];
    // A later event for a, after --auto-disable-after: its failed probe disables the destination.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    vendor
        .publish(
            "a",
            "order.created",
            json!({ "customer": "a", "later": true }),
        )
        .await;

    let seen = eventually("the operator events", Duration::from_secs(30), || async {
        let seen: BTreeSet<(String, String)> = operator
            .requests()
            .iter()
            .map(|r| {
                let body = r.json();
                (
                    body["type"].as_str().unwrap().to_owned(),
                    body["data"]["sub_tenant"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        wanted
            .iter()
            .all(|(t, c)| seen.contains(&(t.to_string(), c.to_string())))
            .then_some(seen)
    })
    .await;
    println!("operator events: {seen:?}");
    let requests = operator.requests();
    assert_eq!(
        common::verify_with_standardwebhooks(&secret, &requests),
        requests.len(),
        "every operator event verifies with the operator secret"
    );
    for request in &requests {
        let body = request.json();
        let customer = body["data"]["sub_tenant"].as_str().unwrap();
        assert_eq!(
            body["data"]["destination_id"],
            destinations[customer].as_str(),
            "{body}"
        );
        let text = String::from_utf8_lossy(&request.body);
        assert!(
            !text.contains("whsec_"),
            "no secret in an operator event: {text}"
        );
    }
}
