//! Benchmark: the cost of one sandboxed plugin invocation, webhook deliveries per second through
//! the sandbox (warm sessions, batches sent concurrently by the plugin) beside a native Rust
//! sender doing the same work, and batches per second of protocol plugins with warm sessions
//! beside cold ones (a new session, hence a new connection, per batch), in the same run.
//!
//! `scripts/bench` runs it: `cargo run --example bench_sandbox -- PLUGINS_DIR [SECONDS]`.
//! Prints figures; asserts nothing (these machines are noisy).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::Mac as _;
use pushrail_sandbox::{
    Credential, EgressPolicy, Event, NetLimits, Plugin, Sandbox, SandboxLimits, SessionKey,
    SessionSpec,
};

const CONCURRENCY: usize = 32;
/// Events per plugin call in the throughput runs (the engine's default batch is 100).
const BATCH: usize = 50;
/// Destinations the throughput runs spread over, each with its warm session.
const DESTINATIONS: usize = 8;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let plugins_dir = args.next().unwrap_or_else(|| "plugins/dist".into());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);

    let receiver = start_receiver().await?;
    let limits = SandboxLimits {
        instances: 256,
        warm_sessions: 64,
        ..SandboxLimits::default()
    };
    let policy = EgressPolicy::new(vec!["127.0.0.0/8".parse()?]);
    let host = Sandbox::new(policy, NetLimits::default(), limits)?;
    let cache = std::env::temp_dir().join("pushrail-bench-cache");
    for name in ["webhook", "rabbitmq", "kafka"] {
        let path = std::path::Path::new(&plugins_dir).join(format!("{name}.wasm"));
        if let Err(error) = host.load(&path, &cache).await {
            println!("({name} not loaded: {error:#})");
        }
    }
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

    // 2. One delivery at a time, through the destination's warm session.
    let n: u64 = std::env::var("BENCH_SEQUENTIAL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let started = Instant::now();
    for i in 0..n {
        let delivered = deliver(&host, &plugin, &config, 0, i, 1).await;
        anyhow::ensure!(delivered == 1, "sequential delivery {i} failed");
    }
    let per_delivery = started.elapsed() / n as u32;
    println!(
        "sandboxed webhook delivery, sequential, warm session: {:.1} µs each",
        per_delivery.as_secs_f64() * 1e6
    );

    // 3. Throughput, sandbox against native, same requests in flight and duration. The sandbox
    //    gets batches (as the engine hands them out), which the plugin sends concurrently.
    let window = Duration::from_secs(seconds);
    let calls = CONCURRENCY.div_ceil(16);
    let sandboxed = {
        let host = host.clone();
        let plugin = plugin.clone();
        let config = config.clone();
        run_for(window, calls, move |i| {
            let host = host.clone();
            let plugin = plugin.clone();
            let config = config.clone();
            async move { deliver(&host, &plugin, &config, i as usize % DESTINATIONS, i, BATCH).await }
        })
        .await
    };
    let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let native = {
        let url = receiver.clone();
        run_for(window, CONCURRENCY, move |i| {
            let client = client.clone();
            let url = url.clone();
            async move { usize::from(native_send(&client, &url, i).await) }
        })
        .await
    };
    println!("webhook deliveries/s, {CONCURRENCY} requests in flight, {seconds} s each:");
    println!("  sandboxed plugin ({calls} calls of {BATCH} events, 16 requests in flight each): {sandboxed:.0}/s");
    println!("  native Rust sender ({CONCURRENCY} tasks): {native:.0}/s");
    println!("  sandboxed / native: {:.0}%", 100.0 * sandboxed / native);

    // 4. Protocol plugins: batches/s with the session kept warm beside a new one per batch.
    protocols::run(&host, Duration::from_secs(seconds.min(5))).await;
    Ok(())
}

/// Delivers `n` events as one batch to destination `destination`'s session; how many went.
async fn deliver(
    host: &Sandbox,
    plugin: &Arc<Plugin>,
    config: &str,
    destination: usize,
    i: u64,
    n: usize,
) -> usize {
    let key = SessionKey::new(&format!("dst_{destination}"), &[config.as_bytes()]);
    let config = config.to_owned();
    let spec = move || {
        Ok(SessionSpec {
            config,
            credential: Some(Credential {
                kind: "webhook_secret".into(),
                secret: format!(r#"{{"secret":"{SECRET}"}}"#),
            }),
        })
    };
    let events = (0..n)
        .map(|k| Event {
            id: format!("evt_{i}_{k}"),
            event_type: "order.created".into(),
            occurred_at: 1_700_000_000_000,
            payload: br#"{"order":42,"total":"19.99"}"#.to_vec(),
            attributes: Vec::new(),
        })
        .collect();
    match host.deliver(plugin, key, spec, events).await {
        Ok(outcomes) => {
            if let Some(Err(failure)) = outcomes.iter().map(|o| &o.result).find(|r| r.is_err()) {
                eprintln!("webhook: {}", failure.message);
            }
            outcomes.iter().filter(|o| o.result.is_ok()).count()
        }
        Err(failure) => {
            eprintln!("webhook: {}", failure.message);
            0
        }
    }
}

mod protocols;

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

/// Runs `send` with `workers` tasks for `window`; returns what they sent per second (`send`
/// answers how many deliveries one call made).
pub(crate) async fn run_for<F, Fut>(window: Duration, workers: usize, send: F) -> f64
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = usize> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + window;
    let workers: Vec<_> = (0..workers)
        .map(|_| {
            let (done, next, send) = (done.clone(), next.clone(), send.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let sent = send(next.fetch_add(1, Ordering::Relaxed)).await;
                    done.fetch_add(sent as u64, Ordering::Relaxed);
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
