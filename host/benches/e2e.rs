//! End-to-end deliveries per second to a local webhook receiver: the real `pushrail` binary on
//! the embedded SQLite store, on PostgreSQL with one host, and on PostgreSQL with two hosts, in
//! one run. Events are published in batches of 1,000; the clock runs from the first publish to
//! the last delivery the receiver sees.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Host, Receiver, SECRET};
use serde_json::json;

const BATCH: usize = 1_000;

#[tokio::main]
async fn main() {
    let events: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    println!("end-to-end webhook deliveries/s ({events} events, batches of {BATCH}):");
    for (label, hosts) in [
        ("SQLite, one host", 0),
        ("PostgreSQL, one host", 1),
        ("PostgreSQL, two hosts", 2),
    ] {
        let rate = run(hosts, events).await;
        println!("  {label}: {rate:.0}/s");
    }
}

/// `hosts` = 0 runs one host on SQLite; 1 or 2 run that many on one PostgreSQL database.
async fn run(hosts: usize, events: usize) -> f64 {
    let receiver = Receiver::start().await;
    let args = ["--concurrency", "64", "--batch-linger", "2ms"];
    let first = if hosts == 0 {
        Host::start(&args).await
    } else {
        Host::start_postgres(&args).await
    };
    let mut all_args = vec!["--allow-egress", "127.0.0.0/8"];
    all_args.extend(args);
    let second = if hosts == 2 {
        Some(Host::join(&first, &all_args).await)
    } else {
        None
    };
    let vendor = first.create_tenant("Bench");
    let customer = vendor.session("c").await;
    customer.webhook(&receiver.url, SECRET).await;

    let client = reqwest::Client::new();
    let started = Instant::now();
    for batch in 0..events.div_ceil(BATCH) {
        let base = match (&second, batch % 2) {
            (Some(second), 1) => &second.base,
            _ => &first.base,
        };
        let body: Vec<_> = (0..BATCH.min(events - batch * BATCH))
            .map(|i| json!({ "external_id": "c", "type": "bench", "payload": { "n": batch * BATCH + i } }))
            .collect();
        let (status, _) = common::call(
            &client,
            "POST",
            &format!("{base}/v1/events/batch"),
            &vendor.api_key,
            Some(&json!({ "events": body })),
        )
        .await;
        assert_eq!(status, 202);
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    // Counting is cheap; the distinct ids are checked once at the end.
    while receiver.count() < events {
        assert!(
            Instant::now() < deadline,
            "only {} of {events} delivered",
            receiver.count()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rate = events as f64 / started.elapsed().as_secs_f64();
    let distinct: HashSet<String> = receiver
        .requests()
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_owned))
        .collect();
    assert_eq!(
        distinct.len(),
        events,
        "every event delivered exactly once in a run without failures"
    );
    rate
}
