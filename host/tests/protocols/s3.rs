//! `s3` against moto server (PyPI `moto[server]`) started by each test on a free port, with its
//! auth checks on where a test says so; buckets are created, and objects listed, downloaded,
//! gunzipped and parsed with boto3.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::common::eventually;
use crate::support::{
    assert_batched, assert_same_events, aws, fast_retries, free_port, moto, outcomes,
    sample_events, unique, Setup, CUSTOMER,
};

const REGION: &str = "us-east-1";

fn credential() -> Option<(&'static str, Value)> {
    Some((
        "aws_access_key",
        json!({ "access_key_id": "AKIDPUSHRAILTEST", "secret_access_key": "not-checked-here" }),
    ))
}

/// A bucket name no other test uses, within S3's rules (lower case, digits and hyphens).
fn bucket_name() -> String {
    unique("pushrail").replace('_', "-").to_lowercase()
}

fn config(port: u16, bucket: &str, key_prefix: &str) -> Value {
    json!({
        "bucket": bucket, "region": REGION, "key_prefix": key_prefix,
        "endpoint": format!("http://127.0.0.1:{port}")
    })
}

/// Events published together are handed to the plugin together: one batch, so one object.
fn one_batch() -> Vec<String> {
    vec!["--batch-linger".to_owned(), "300ms".to_owned()]
}

/// What the objects hold, by event id: (type, payload); no event is in two objects, or twice in
/// one.
fn received(objects: &Value) -> BTreeMap<String, (String, Value)> {
    let mut out = BTreeMap::new();
    for object in objects.as_array().unwrap() {
        for record in object["records"].as_array().unwrap() {
            let id = record["id"].as_str().unwrap().to_owned();
            let previous = out.insert(
                id.clone(),
                (
                    record["type"].as_str().unwrap().to_owned(),
                    record["payload"].clone(),
                ),
            );
            assert!(previous.is_none(), "{id} was written twice: {objects}");
        }
    }
    out
}

fn utc(record: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(record["occurred_at"].as_str().unwrap(), &Rfc3339).unwrap()
}

/// The name the `s3` type gives an object of these records (see its README): the first event's
/// time, the first 32 hex digits of the SHA-256 of the ids in order (each after its length as 8
/// bytes big-endian), the extension.
fn expected_name(records: &[Value], extension: &str) -> String {
    let mut hash = Sha256::new();
    for record in records {
        let id = record["id"].as_str().unwrap();
        hash.update((id.len() as u64).to_be_bytes());
        hash.update(id.as_bytes());
    }
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let t = utc(&records[0]);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}{extension}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        &hex[..32]
    )
}

/// The default partitions of a record's time: `year=YYYY/month=MM/day=DD/hour=HH/`.
fn hour_partitions(record: &Value) -> String {
    let t = utc(record);
    format!(
        "year={:04}/month={:02}/day={:02}/hour={:02}/",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour()
    )
}

/// Checks one gzip object as the type writes it: its key, content type, metadata and checksum.
fn assert_gzip_object(object: &Value, key_prefix: &str) {
    let records = object["records"].as_array().unwrap();
    assert_eq!(
        object["key"],
        format!(
            "{key_prefix}{}{}",
            hour_partitions(&records[0]),
            expected_name(records, ".ndjson.gz")
        ),
        "{object}"
    );
    assert_eq!(object["content_type"], "application/gzip", "{object}");
    assert_eq!(object["content_encoding"], Value::Null, "{object}");
    assert_eq!(
        object["metadata"]["pushrail-events"],
        records.len().to_string(),
        "{object}"
    );
    assert_eq!(
        object["checksum_sha256"], object["stored_sha256"],
        "the SHA-256 sent with the object is that of the stored bytes: {object}"
    );
}

#[tokio::test]
async fn s3_writes_a_batch_as_one_gzipped_ndjson_object_and_a_replay_overwrites_it() {
    let port = free_port();
    let _moto = moto(port, None);
    let bucket = bucket_name();
    aws(port, &["create-bucket", &bucket]);
    let setup = Setup::new(
        &one_batch(),
        "s3",
        config(port, &bucket, "events/"),
        credential(),
    )
    .await;
    let events = sample_events(6);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    assert_batched(&delivered);

    let objects = aws(port, &["read-objects", &bucket, ""]);
    assert_eq!(objects.as_array().unwrap().len(), 1, "{objects}");
    let object = &objects[0];
    assert_gzip_object(object, "events/");
    // Lines in the order the batch had them, which is the order the name hashes.
    let key = object["key"].as_str().unwrap().to_owned();
    for d in &delivered {
        assert_eq!(outcomes(d), ["succeeded"], "{d}");
        let excerpt = d["attempts"][0]["response_excerpt"].as_str().unwrap();
        assert!(
            excerpt.starts_with(&format!("s3://{bucket}/{key}, 6 events, ETag ")),
            "{excerpt}"
        );
    }
    assert_same_events(&ids, &events, &received(&objects));

    // Replaying the whole batch writes the same events again: the same key, so the object is
    // overwritten, not joined by a second one.
    let now = OffsetDateTime::now_utc();
    let (status, answer) = setup
        .customer
        .call(
            "POST",
            "/embed/v1/replays",
            Some(json!({
                "since": (now - Duration::from_secs(3600)).format(&Rfc3339).unwrap(),
                "until": (now + Duration::from_secs(3600)).format(&Rfc3339).unwrap(),
                "status": "succeeded"
            })),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["deliveries"], 6, "{answer}");
    eventually("the replay", Duration::from_secs(30), || async {
        let all = setup.customer.deliveries("?limit=500").await;
        let mut done = 0;
        for d in &all {
            let detail = setup.customer.delivery(d["id"].as_str().unwrap()).await;
            if detail["status"] == "succeeded" && outcomes(&detail).len() == 2 {
                done += 1;
            }
        }
        (done == ids.len()).then_some(())
    })
    .await;
    let again = aws(port, &["read-objects", &bucket, ""]);
    assert_eq!(again.as_array().unwrap().len(), 1, "{again}");
    assert_eq!(again[0]["key"], key.as_str());
    assert_same_events(&ids, &events, &received(&again));
}

/// Passes every request on to moto, but answers the first `lose` PUTs with S3's 500
/// InternalError once moto has stored the object: an answer lost after the write.
struct LosingProxy {
    port: u16,
    puts: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct ProxyState {
    target: u16,
    lose: Arc<AtomicUsize>,
    puts: Arc<Mutex<Vec<String>>>,
    client: reqwest::Client,
}

impl LosingProxy {
    async fn start(target: u16, lose: usize) -> LosingProxy {
        let puts = Arc::new(Mutex::new(Vec::new()));
        let state = ProxyState {
            target,
            lose: Arc::new(AtomicUsize::new(lose)),
            puts: puts.clone(),
            client: reqwest::Client::new(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().fallback(forward).with_state(state);
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        LosingProxy { port, puts, task }
    }

    fn puts(&self) -> Vec<String> {
        self.puts.lock().unwrap().clone()
    }
}

impl Drop for LosingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    State(state): State<ProxyState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let url = format!(
        "http://127.0.0.1:{}{}",
        state.target,
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut request = state.client.request(method.clone(), url).body(body);
    for (name, value) in &headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            request = request.header(name, value);
        }
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    let answer_headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap();
    if method == Method::PUT {
        state.puts.lock().unwrap().push(uri.path().to_owned());
        assert!(status.is_success(), "moto refused the PUT: {status}");
        if state
            .lose
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "application/xml")],
                "<Error><Code>InternalError</Code><Message>We encountered an internal error. \
                 Please try again.</Message></Error>",
            )
                .into_response();
        }
    }
    let mut response = (status, bytes).into_response();
    for (name, value) in &answer_headers {
        if name != header::CONTENT_LENGTH
            && name != header::TRANSFER_ENCODING
            && name != header::CONNECTION
        {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}

#[tokio::test]
async fn s3_an_answer_lost_after_the_write_is_retried_into_the_same_object() {
    let port = free_port();
    let _moto = moto(port, None);
    let bucket = bucket_name();
    aws(port, &["create-bucket", &bucket]);
    let proxy = LosingProxy::start(port, 1).await;
    // Retries at once: the batch's events come back due together, so they travel together again.
    let mut args = one_batch();
    args.extend(["--retry-schedule".to_owned(), "0s,0s,0s".to_owned()]);
    let setup = Setup::new(&args, "s3", config(proxy.port, &bucket, ""), credential()).await;
    let events = sample_events(5);
    let ids = setup.publish(&events).await;
    for d in setup.wait_for("succeeded", ids.len()).await {
        assert_eq!(outcomes(&d), ["retryable_error", "succeeded"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(error.starts_with("InternalError: "), "{error}");
    }
    let puts = proxy.puts();
    assert_eq!(puts.len(), 2, "one PutObject, then its retry: {puts:?}");
    assert_eq!(puts[0], puts[1], "the retry wrote the same key");
    let objects = aws(port, &["read-objects", &bucket, ""]);
    assert_eq!(objects.as_array().unwrap().len(), 1, "{objects}");
    assert_gzip_object(&objects[0], "");
    assert_same_events(&ids, &events, &received(&objects));
}

/// Publishes `(type, payload, occurred_at)` events in one batch call; their ids, in order.
async fn publish_at(setup: &Setup, events: &[(&str, Value, &str)]) -> Vec<String> {
    let body: Vec<Value> = events
        .iter()
        .map(|(t, p, at)| json!({ "external_id": CUSTOMER, "type": t, "payload": p, "occurred_at": at }))
        .collect();
    let (status, answer) = setup
        .vendor
        .call("POST", "/v1/events/batch", Some(json!({ "events": body })))
        .await;
    assert_eq!(status, 202, "{answer}");
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn s3_uncompressed_objects_under_a_templated_prefix_one_per_partition() {
    let port = free_port();
    let _moto = moto(port, None);
    let bucket = bucket_name();
    aws(port, &["create-bucket", &bucket]);
    let mut config = config(
        port,
        &bucket,
        "raw/tenant={{payload.tenant}}/{{time.year}}/{{time.month}}/{{time.day}}/{{time.hour}}/",
    );
    config["compression"] = json!("none");
    let setup = Setup::new(&one_batch(), "s3", config, credential()).await;
    let published = [
        (
            "order.created",
            json!({ "tenant": "a", "n": 0 }),
            "2026-03-07T09:05:00Z",
        ),
        (
            "order.paid",
            json!({ "tenant": "b", "n": 1 }),
            "2026-03-07T09:10:00.5Z",
        ),
        (
            "order.created",
            json!({ "tenant": "a", "n": 2 }),
            "2026-03-07T10:01:00Z",
        ),
        // No tenant: its key cannot be made, so it fails alone.
        ("order.created", json!({ "n": 3 }), "2026-03-07T09:20:00Z"),
        (
            "order.paid",
            json!({ "tenant": "a", "n": 4 }),
            "2026-03-07T09:30:00Z",
        ),
    ];
    let ids = publish_at(&setup, &published).await;
    let settled = setup.settle(ids.len()).await;
    for d in &settled {
        let detail = setup.customer.delivery(d["id"].as_str().unwrap()).await;
        if d["event_id"] == ids[3].as_str() {
            assert_eq!(outcomes(&detail), ["permanent_error"], "{detail}");
            assert_eq!(
                detail["attempts"][0]["error"],
                "key_prefix: the payload has no tenant"
            );
        } else {
            assert_eq!(outcomes(&detail), ["succeeded"], "{detail}");
        }
    }

    let objects = aws(port, &["read-objects", &bucket, "raw/"]);
    let layout: Vec<(String, Vec<i64>)> = objects
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let key = o["key"].as_str().unwrap();
            let records = o["records"].as_array().unwrap();
            assert_eq!(o["content_type"], "application/x-ndjson", "{o}");
            assert_eq!(o["content_encoding"], Value::Null, "{o}");
            let (prefix, name) = key.rsplit_once('/').unwrap();
            assert_eq!(name, expected_name(records, ".ndjson"), "{o}");
            (
                prefix.to_owned(),
                records
                    .iter()
                    .map(|r| r["payload"]["n"].as_i64().unwrap())
                    .collect(),
            )
        })
        .collect();
    // Each event in the partition of its own tenant and hour, in publishing order.
    assert_eq!(
        layout,
        [
            ("raw/tenant=a/2026/03/07/09".to_owned(), vec![0, 4]),
            ("raw/tenant=a/2026/03/07/10".to_owned(), vec![2]),
            ("raw/tenant=b/2026/03/07/09".to_owned(), vec![1]),
        ]
    );
    let mut expected_ids = ids.clone();
    expected_ids.remove(3);
    let expected: Vec<(String, Value)> = published
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, (t, p, _))| (t.to_string(), p.clone()))
        .collect();
    let got = received(&objects);
    assert_same_events(&expected_ids, &expected, &got);
}

#[tokio::test]
async fn s3_a_missing_bucket_is_a_permanent_error_with_nosuchbucket() {
    let port = free_port();
    let _moto = moto(port, None);
    let bucket = bucket_name();
    let setup = Setup::new(
        &fast_retries(),
        "s3",
        config(port, &bucket, ""),
        credential(),
    )
    .await;
    let ids = setup.publish(&sample_events(2)).await;
    for d in setup.wait_for("failed", ids.len()).await {
        assert_eq!(outcomes(&d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(error.starts_with("NoSuchBucket: "), "{error}");
        assert!(
            error.contains(&format!("; PutObject s3://{bucket}/")),
            "{error}"
        );
        assert_eq!(d["attempts"][0]["status_code"], 404, "{d}");
    }
}

#[tokio::test]
async fn s3_wrong_secret_key_is_a_permanent_error_with_awss_code() {
    let port = free_port();
    // Set-up: create the user, its policy and key, and the bucket, unauthenticated.
    let _moto = moto(port, Some(4));
    let key = aws(port, &["create-key"]);
    let bucket = bucket_name();
    aws(port, &["create-bucket", &bucket]);
    // A prefix with a space and non-ASCII text: moto recomputes the signature over the
    // percent-encoded path.
    let prefix = "signed/zoë ☕ & co/";
    let wrong = Setup::new(
        &fast_retries(),
        "s3",
        config(port, &bucket, prefix),
        Some((
            "aws_access_key",
            json!({ "access_key_id": key["access_key_id"], "secret_access_key": "wrong-secret-key" }),
        )),
    )
    .await;
    wrong.publish(&sample_events(1)).await;
    let failed = wrong.wait_for("failed", 1).await;
    assert_eq!(outcomes(&failed[0]), ["permanent_error"], "{}", failed[0]);
    let error = failed[0]["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("SignatureDoesNotMatch"), "{error}");
    assert!(!error.contains("wrong-secret-key"), "no secret in the log");

    let right = Setup::new(
        &one_batch(),
        "s3",
        config(port, &bucket, prefix),
        Some((
            "aws_access_key",
            json!({ "access_key_id": key["access_key_id"], "secret_access_key": key["secret_access_key"] }),
        )),
    )
    .await;
    let events = sample_events(3);
    let ids = right.publish(&events).await;
    right.wait_for("succeeded", ids.len()).await;
    let objects = aws(
        port,
        &[
            "read-objects",
            &bucket,
            prefix,
            key["access_key_id"].as_str().unwrap(),
            key["secret_access_key"].as_str().unwrap(),
        ],
    );
    assert_eq!(objects.as_array().unwrap().len(), 1, "{objects}");
    assert_gzip_object(&objects[0], prefix);
    assert_same_events(&ids, &events, &received(&objects));
}
