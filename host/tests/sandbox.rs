//! Hostile plugins end as clear failed attempts; the host keeps serving and other destinations
//! keep delivering.

mod common;

use std::time::Duration;

use common::{eventually, Host, Receiver, SECRET};
use serde_json::{json, Value};

async fn attempt(customer: &common::Session, config: Value) -> Value {
    let destination = customer
        .create(
            "/embed/v1/destinations",
            json!({ "type": "hostile", "name": "h", "config": config }),
        )
        .await;
    let id = destination["id"].as_str().unwrap();
    let (status, answer) = customer
        .call("POST", &format!("/embed/v1/destinations/{id}/test"), None)
        .await;
    assert_eq!(status, 200, "{answer}");
    answer["attempt"].clone()
}

fn assert_failed(attempt: &Value, outcome: &str, needle: &str) {
    assert_eq!(attempt["outcome"], outcome, "{attempt}");
    let error = attempt["error"].as_str().unwrap_or_default();
    assert!(error.contains(needle), "expected {needle:?} in {attempt}");
}

#[tokio::test]
async fn hostile_plugins_fail_cleanly_while_others_deliver() {
    let receiver = Receiver::start().await;
    let redirector = Receiver::start().await;
    redirector.redirect_to("http://10.0.0.1/internal");
    // Loopback is opened for the receivers; the private and metadata ranges stay refused.
    // One attempt each (no retries), so the log's count below is stable.
    let host = Host::start_with_test_plugins(&[
        "--allow-egress",
        "127.0.0.0/8",
        "--plugin-timeout",
        "2s",
        "--plugin-memory-mib",
        "64",
        "--retry-schedule",
        "0s",
    ])
    .await;
    let vendor = host.create_tenant("Acme");
    let victim = vendor.session("victim").await;
    let bystander = vendor.session("bystander").await;
    bystander.webhook(&receiver.url, SECRET).await;

    let publisher = {
        let vendor_key = vendor.api_key.clone();
        let base = host.base.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..20 {
                let body =
                    json!({ "external_id": "bystander", "type": "tick", "payload": { "i": i } });
                let (status, _) = common::call(
                    &client,
                    "POST",
                    &format!("{base}/v1/events"),
                    &vendor_key,
                    Some(&body),
                )
                .await;
                assert_eq!(status, 202);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let looping = attempt(&victim, json!({ "behaviour": "loop" })).await;
    assert_failed(&looping, "retryable_error", "timeout");
    assert!(
        looping["duration_ms"].as_i64().unwrap() < 10_000,
        "stopped near its deadline: {looping}"
    );

    let greedy = attempt(&victim, json!({ "behaviour": "alloc" })).await;
    assert_eq!(greedy["outcome"], "retryable_error", "{greedy}");
    assert!(
        greedy["error"].as_str().unwrap().contains("trapped"),
        "{greedy}"
    );

    let panicking = attempt(&victim, json!({ "behaviour": "panic" })).await;
    assert_failed(&panicking, "retryable_error", "trapped");

    let hoarding = attempt(&victim, json!({ "behaviour": "resources" })).await;
    assert_failed(&hoarding, "retryable_error", "trapped");

    assert_failed(
        &attempt(&victim, json!({ "behaviour": "file" })).await,
        "permanent_error",
        "file access refused",
    );
    assert_failed(
        &attempt(&victim, json!({ "behaviour": "env" })).await,
        "permanent_error",
        "no environment visible",
    );
    let port = receiver.port;
    assert_failed(
        &attempt(&victim, json!({ "behaviour": "socket", "port": port })).await,
        "permanent_error",
        "raw socket refused",
    );
    assert_failed(
        &attempt(
            &victim,
            json!({ "behaviour": "http", "url": "http://169.254.169.254/latest/meta-data/" }),
        )
        .await,
        "permanent_error",
        "egress policy",
    );
    assert_failed(
        &attempt(
            &victim,
            json!({ "behaviour": "follow-redirect", "url": redirector.url }),
        )
        .await,
        "permanent_error",
        "egress policy",
    );
    assert_eq!(
        redirector.count(),
        1,
        "the first hop was allowed, the redirect into private space was not"
    );

    publisher.await.unwrap();
    eventually(
        "the bystander's events all delivered",
        Duration::from_secs(20),
        || async { (receiver.count() == 20).then_some(()) },
    )
    .await;
    let (status, _) = bystander.call("GET", "/embed/v1/destinations", None).await;
    assert_eq!(status, 200, "the host keeps serving");
    let failed = victim.deliveries("?status=failed").await;
    assert_eq!(
        failed.len(),
        9,
        "every hostile attempt is in the delivery log, failed"
    );
}

#[tokio::test]
async fn loopback_needs_the_allowlist_even_over_tcp() {
    let receiver = Receiver::start().await;
    let closed = Host::start_with_test_plugins(&["--retry-schedule", "0s"]).await;
    let vendor = closed.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let refused = attempt(
        &customer,
        json!({ "behaviour": "tcp", "port": receiver.port }),
    )
    .await;
    assert_failed(&refused, "permanent_error", "egress policy refused");

    let open = Host::start_with_test_plugins(&["--allow-egress", "127.0.0.0/8"]).await;
    let vendor = open.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let allowed = attempt(
        &customer,
        json!({ "behaviour": "tcp", "port": receiver.port }),
    )
    .await;
    assert_eq!(allowed["outcome"], "succeeded", "{allowed}");
}

#[tokio::test]
async fn the_template_plugin_loads_and_is_checked() {
    let out = std::process::Command::new(common::bin())
        .arg("--data-dir")
        .arg(tempfile::tempdir().unwrap().path())
        .args(["plugins", "check"])
        .arg(common::test_plugins_dir().join("template.wasm"))
        .env("PUSHRAIL_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["type"], "my_destination");
    assert_eq!(
        report["sample_config"],
        json!({ "url": "https://example.com/ingest" })
    );
    assert_eq!(report["validate"], json!([]));
    assert_eq!(report["wit"], "pushrail:destination@0.2.0");
    // The SDK's HTTP client sends through the host's batch import.
    assert!(report["imports"].as_array().unwrap().iter().any(|i| i
        .as_str()
        .unwrap()
        .starts_with("pushrail:destination/http-batch")));

    let bad = std::process::Command::new(common::bin())
        .arg("--data-dir")
        .arg(tempfile::tempdir().unwrap().path())
        .args(["plugins", "check"])
        .arg(common::workspace().join("README.md"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a valid WebAssembly component"));
}

#[tokio::test]
async fn a_colliding_type_id_is_refused_with_a_clear_log_line() {
    let temp = tempfile::tempdir().unwrap();
    let plugins = temp.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        common::plugins_dir().join("webhook.wasm"),
        plugins.join("a-webhook.wasm"),
    )
    .unwrap();
    std::fs::copy(
        common::plugins_dir().join("webhook.wasm"),
        plugins.join("b-webhook.wasm"),
    )
    .unwrap();
    let host = Host::start_with(&["--plugins-dir", plugins.to_str().unwrap()]).await;
    assert!(
        host.log()
            .contains("type id \"webhook\" is already provided by"),
        "{}",
        host.log()
    );
    let vendor = host.create_tenant("Acme");
    let (status, types) = vendor.call("GET", "/v1/destination-types", None).await;
    assert_eq!(status, 200);
    assert_eq!(types.as_array().unwrap().len(), 1);
}
