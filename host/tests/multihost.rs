//! Several hosts on one PostgreSQL database share the queue: everything is delivered, nothing is
//! attempted by two hosts at once, and a host killed mid-run loses nothing.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use common::{database, eventually, Host, Receiver, SECRET};
use serde_json::json;

const EVENTS: usize = 10_000;
const BATCH: usize = 1_000;

#[tokio::test]
async fn two_hosts_deliver_everything_once_at_a_time_and_survive_a_kill() {
    let receiver = Receiver::start().await;
    let args = [
        "--lease",
        "3s",
        "--retry-schedule",
        "0s,500ms,500ms,500ms,500ms,500ms",
    ];
    let mut first = Host::start_postgres(&args).await;
    let mut all_args = vec!["--allow-egress", "127.0.0.0/8"];
    all_args.extend(args);
    let second = Host::join(&first, &all_args).await;
    let vendor = first.create_tenant("Acme");
    let customer = vendor.session("c").await;
    customer.webhook(&receiver.url, SECRET).await;

    let mut expected = BTreeSet::new();
    let client = reqwest::Client::new();
    let mut killed = false;
    for batch in 0..EVENTS / BATCH {
        // Alternate between the hosts while both live; after the kill the survivor takes the rest.
        let base = if batch % 2 == 0 && !killed {
            &first.base
        } else {
            &second.base
        };
        let events: Vec<_> = (0..BATCH)
            .map(|i| json!({ "external_id": "c", "type": "order.created", "payload": { "n": batch * BATCH + i } }))
            .collect();
        let (status, answer) = common::call(
            &client,
            "POST",
            &format!("{base}/v1/events/batch"),
            &vendor.api_key,
            Some(&json!({ "events": events })),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
        for result in answer["results"].as_array().unwrap() {
            expected.insert(result["event_id"].as_str().unwrap().to_owned());
        }
        if batch == 6 {
            eventually("deliveries under way", Duration::from_secs(60), || async {
                (receiver.count() >= 2_000).then_some(())
            })
            .await;
            first.kill();
            killed = true;
        }
    }
    assert_eq!(expected.len(), EVENTS);

    eventually(
        "every event delivered",
        Duration::from_secs(240),
        || async {
            let received: BTreeSet<String> = receiver
                .requests()
                .iter()
                .filter_map(|r| r.header("webhook-id").map(str::to_owned))
                .collect();
            expected.is_subset(&received).then_some(())
        },
    )
    .await;

    // No delivery was attempted by two hosts at once: its attempts never overlap in time.
    let db = database(&second).await;
    let rows: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT delivery_id, started_at, duration_ms FROM attempts")
            .fetch_all(&db)
            .await
            .unwrap();
    let mut by_delivery: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for (id, started, duration) in rows {
        by_delivery
            .entry(id)
            .or_default()
            .push((started, started + duration));
    }
    for (id, mut spans) in by_delivery {
        spans.sort();
        for pair in spans.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "delivery {id} was attempted concurrently: {spans:?}"
            );
        }
    }
    let duplicates = receiver.count() - EVENTS;
    println!("{EVENTS} events delivered by two hosts; {duplicates} re-sent after the kill (at-least-once)");
    let url = format!(
        "{}/embed/v1/deliveries?status=succeeded&limit=1",
        second.base
    );
    let (status, log) = common::call(&client, "GET", &url, &customer.token, None).await;
    assert_eq!(
        status, 200,
        "the survivor serves the same customer's session: {log}"
    );
    assert_eq!(log["items"].as_array().unwrap().len(), 1);
}

/// SIGTERM under load: the stopped host claims nothing more, lets its calls in flight finish and
/// records them, and exits within its grace period; the other host delivers the rest; nothing is
/// lost.
#[tokio::test]
async fn a_host_stopped_with_sigterm_drains_and_the_other_delivers_the_rest() {
    const N: usize = 200;
    let receiver = Receiver::start().await;
    receiver.set_delay(Duration::from_millis(300));
    let args = ["--shutdown-grace", "10s", "--batch-size", "5"];
    let mut first = Host::start_postgres(&args).await;
    let mut all_args = vec!["--allow-egress", "127.0.0.0/8"];
    all_args.extend(args);
    let second = Host::join(&first, &all_args).await;
    let vendor = first.create_tenant("Acme");
    let customer = vendor.session("c").await;
    customer.webhook(&receiver.url, SECRET).await;
    let events: Vec<_> = (0..N)
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
    eventually("deliveries under way", Duration::from_secs(30), || async {
        (receiver.count() >= 10).then_some(())
    })
    .await;

    let (exit, took) = first
        .terminate(Duration::from_secs(15))
        .await
        .expect("the host exits after SIGTERM");
    println!("stopped after SIGTERM in {took:?} with {exit}");
    assert!(exit.success(), "{exit}");
    assert!(
        took < Duration::from_secs(11),
        "within the grace period: {took:?}"
    );
    let log = first.log();
    assert!(
        log.contains("stopped: every call in flight finished and was recorded"),
        "{log}"
    );

    let stopped = std::time::Instant::now();
    // The customer's session lives on the stopped host's address: read the other host's store.
    let db = database(&second).await;
    eventually("the rest delivered", Duration::from_secs(60), || async {
        let (succeeded,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM deliveries WHERE status = 'succeeded'")
                .fetch_one(&db)
                .await
                .unwrap();
        (succeeded as usize == N).then_some(())
    })
    .await;
    println!(
        "the other host delivered the rest {:?} after the stop",
        stopped.elapsed()
    );
    let received: BTreeSet<String> = receiver
        .requests()
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_owned))
        .collect();
    assert_eq!(received.len(), N, "every event arrived");
    drop(second);
}
