//! Fair scheduling: one customer's backlog at a slow endpoint does not hold back another
//! customer's event. Asserts the order of facts only (the other event is delivered while the
//! backlog is still queued); the delay is printed, not asserted.

mod common;

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
