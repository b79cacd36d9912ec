//! Benchmark: the cost of one sandboxed plugin invocation, and webhook deliveries per second
//! through the sandbox beside a native Rust sender doing the same work, in the same run.
//!
//! `scripts/bench` runs it: `cargo run --example bench_sandbox -- PLUGINS_DIR [SECONDS]`.
//! Prints figures; asserts nothing (these machines are noisy).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::Mac as _;
use pushrail::plugins::{
    Credential, DeliveryRequest, EgressPolicy, Event, NetLimits, PluginHost, SandboxLimits,
};

const CONCURRENCY: usize = 32;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let plugins_dir = args.next().unwrap_or_else(|| "plugins/dist".into());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);

    let receiver = start_receiver().await?;
    let limits = SandboxLimits {
        memory_bytes: 64 << 20,
        timeout: Duration::from_secs(30),
        instances: 128,
    };
    let policy = EgressPolicy::new(vec!["127.0.0.0/8".parse()?]);
    let mut host = PluginHost::new(policy, NetLimits::default(), limits)?;
    let cache = std::env::temp_dir().join("pushrail-bench-cache");
    host.load(
        &std::path::Path::new(&plugins_dir).join("webhook.wasm"),
        &cache,
    )
    .await?;
    let host = Arc::new(host);
    let plugin = host.get("webhook").expect("webhook plugin");
    let config = serde_json::json!({ "url": receiver }).to_string();

    // 1. Instantiate + call + drop, with no I/O: `validate`.
    let n = 2000;
    let started = Instant::now();
    for _ in 0..n {
        host.validate(&plugin, &config).await?;
    }
    let per_call = started.elapsed() / n;
    println!(
        "sandboxed invocation (instantiate + validate + drop): {:.1} µs",
        per_call.as_secs_f64() * 1e6
    );

    // 2. One delivery at a time, through the sandbox.
    let n = 500;
    let started = Instant::now();
    for i in 0..n {
        host.deliver(&plugin, request(&config, i), "bench")
            .await?
            .map_err(|f| anyhow::anyhow!(f.message))?;
    }
    let per_delivery = started.elapsed() / n as u32;
    println!(
        "sandboxed delivery, sequential: {:.1} µs each",
        per_delivery.as_secs_f64() * 1e6
    );

    // 3. Throughput, sandbox against native, same concurrency and duration.
    let window = Duration::from_secs(seconds);
    let sandboxed = {
        let host = host.clone();
        let plugin = plugin.clone();
        let config = config.clone();
        run_for(window, move |i| {
            let host = host.clone();
            let plugin = plugin.clone();
            let config = config.clone();
            async move {
                host.deliver(&plugin, request(&config, i), "bench")
                    .await
                    .map(|r| r.is_ok())
                    .unwrap_or(false)
            }
        })
        .await
    };
    let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let native = {
        let url = receiver.clone();
        run_for(window, move |i| {
            let client = client.clone();
            let url = url.clone();
            async move { native_send(&client, &url, i).await }
        })
        .await
    };
    println!("webhook deliveries/s, {CONCURRENCY} in flight, {seconds} s each:");
    println!("  sandboxed plugin: {sandboxed:.0}/s");
    println!("  native Rust sender: {native:.0}/s");
    println!("  sandboxed / native: {:.0}%", 100.0 * sandboxed / native);
    Ok(())
}

fn request(config: &str, i: u64) -> DeliveryRequest {
    DeliveryRequest {
        config: config.to_owned(),
        credential: Some(Credential {
            kind: "webhook_secret".into(),
            secret: format!(r#"{{"secret":"{SECRET}"}}"#),
        }),
        events: vec![Event {
            id: format!("evt_{i}"),
            event_type: "order.created".into(),
            occurred_at: 1_700_000_000_000,
            payload: br#"{"order":42,"total":"19.99"}"#.to_vec(),
            attributes: Vec::new(),
        }],
    }
}

/// What the webhook plugin does, natively: build the body, sign it, POST it, read the answer.
async fn native_send(client: &reqwest::Client, url: &str, i: u64) -> bool {
    let id = format!("evt_{i}");
    let body = serde_json::to_vec(&serde_json::json!({
        "type": "order.created", "timestamp": "2023-11-14T22:13:20Z", "data": { "order": 42, "total": "19.99" }
    }))
    .unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(&SECRET[6..])
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{now}.").as_bytes());
    mac.update(&body);
    let signature = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    let response = client
        .post(url)
        .header("webhook-id", id)
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    match response {
        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
        Err(_) => false,
    }
}

/// Runs `send` with CONCURRENCY workers for `window`; returns successful sends per second.
async fn run_for<F, Fut>(window: Duration, send: F) -> f64
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + window;
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (done, next, send) = (done.clone(), next.clone(), send.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    if send(next.fetch_add(1, Ordering::Relaxed)).await {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    for worker in workers {
        worker.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn start_receiver() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new().fallback(|_body: axum::body::Bytes| async { "ok" });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Ok(url)
}
