//! `gcs` against gcp-storage-emulator (PyPI), started by each test on a free port, behind
//! `peer_gcp.py serve`: the token endpoint of the OAuth 2.0 JWT-bearer flow (which verifies the
//! RS256 assertion with the public half of a key pair made for the test, and its iss, aud, scope
//! and times) and a gate in front of the emulator that lets through only tokens it issued and
//! enforces `ifGenerationMatch=0`, the two checks of Cloud Storage the emulator does not make.
//! Objects are listed, downloaded, gunzipped and parsed over the emulator's JSON API.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::common::eventually;
use crate::google::{assert_no_key_material, invalid_signature, python_bin, Gate};
use crate::support::{
    assert_batched, assert_same_events, fast_retries, free_port, outcomes, python, sample_events,
    unique, Peer, Setup,
};

const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

/// gcp-storage-emulator and the token endpoint and API gate in front of it.
struct Google {
    _emulator: Peer,
    gate: Gate,
    emulator_port: u16,
}

impl Google {
    fn start() -> Google {
        let emulator_port = free_port();
        let mut command = Command::new(python_bin());
        command.args([
            "-m",
            "gcp_storage_emulator",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            &emulator_port.to_string(),
            "--in-memory",
        ]);
        let mut emulator = Peer::spawn("gcp-storage-emulator", command);
        emulator.wait_for_port(emulator_port);
        Google {
            _emulator: emulator,
            gate: Gate::start(&emulator_port.to_string(), SCOPE),
            emulator_port,
        }
    }

    fn config(&self, bucket: &str, object_prefix: &str) -> Value {
        json!({ "bucket": bucket, "object_prefix": object_prefix, "endpoint": self.gate.endpoint() })
    }

    fn create_bucket(&self) -> String {
        let bucket = unique("pushrail").replace('_', "-").to_lowercase();
        python(
            "peer_gcp.py",
            &["create-bucket", &self.emulator_port.to_string(), &bucket],
        );
        bucket
    }

    fn read_objects(&self, bucket: &str, prefix: &str) -> Value {
        python(
            "peer_gcp.py",
            &[
                "read-objects",
                &self.emulator_port.to_string(),
                bucket,
                prefix,
            ],
        )
    }
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

/// The name the `gcs` type gives an object of these records (see its README): the hour
/// partitions and the first event's time, the first 32 hex digits of the SHA-256 of the ids in
/// order (each after its length as 8 bytes big-endian), the extension.
fn expected_name(prefix: &str, records: &[Value]) -> String {
    let mut hash = Sha256::new();
    for record in records {
        let id = record["id"].as_str().unwrap();
        hash.update((id.len() as u64).to_be_bytes());
        hash.update(id.as_bytes());
    }
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let t = utc(&records[0]);
    format!(
        "{prefix}year={:04}/month={:02}/day={:02}/hour={:02}/{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}.ndjson.gz",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        &hex[..32]
    )
}

fn assert_gzip_object(object: &Value, prefix: &str) {
    let records = object["records"].as_array().unwrap();
    assert_eq!(object["name"], expected_name(prefix, records), "{object}");
    assert_eq!(object["content_type"], "application/gzip", "{object}");
}

#[tokio::test]
async fn gcs_writes_a_batch_as_one_gzipped_ndjson_object_a_replay_adds_none_and_the_token_is_kept()
{
    let google = Google::start();
    let bucket = google.create_bucket();
    let setup = Setup::new(
        &one_batch(),
        "gcs",
        google.config(&bucket, "events/"),
        google.gate.credential(),
    )
    .await;
    let events = sample_events(6);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    assert_batched(&delivered);

    let objects = google.read_objects(&bucket, "");
    assert_eq!(objects.as_array().unwrap().len(), 1, "{objects}");
    assert_gzip_object(&objects[0], "events/");
    let name = objects[0]["name"].as_str().unwrap().to_owned();
    for d in &delivered {
        assert_eq!(outcomes(d), ["succeeded"], "{d}");
        let excerpt = d["attempts"][0]["response_excerpt"].as_str().unwrap();
        assert!(
            excerpt.starts_with(&format!("gs://{bucket}/{name}, 6 events, generation ")),
            "{excerpt}"
        );
    }
    assert_same_events(&ids, &events, &received(&objects));

    // Replaying the batch: the object is there already (412), nothing is added.
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
    let replayed = eventually("the replay", Duration::from_secs(30), || async {
        let mut done = Vec::new();
        for d in setup.customer.deliveries("?limit=500").await {
            let detail = setup.customer.delivery(d["id"].as_str().unwrap()).await;
            if detail["status"] == "succeeded" && outcomes(&detail).len() == 2 {
                done.push(detail);
            }
        }
        (done.len() == ids.len()).then_some(done)
    })
    .await;
    for d in &replayed {
        let second = &d["attempts"][1];
        assert_eq!(second["status_code"], 412, "{d}");
        assert_eq!(
            second["response_excerpt"],
            format!(
                "gs://{bucket}/{name} already exists (written by an earlier attempt of these 6 events)"
            ),
            "{d}"
        );
    }
    let again = google.read_objects(&bucket, "");
    assert_eq!(again.as_array().unwrap().len(), 1, "{again}");
    assert_eq!(again[0]["name"], name.as_str());
    assert_same_events(&ids, &events, &received(&again));

    // A second batch: a second object, with the session's token still.
    let more = sample_events(3);
    let more_ids = setup.publish(&more).await;
    eventually("the second batch", Duration::from_secs(30), || async {
        let objects = google.read_objects(&bucket, "");
        (objects.as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    let stats = google.gate.stats().await;
    assert_eq!(stats["tokens_issued"], 1, "the token is kept: {stats}");
    assert_eq!(stats["refused"], json!([]), "{stats}");
    assert_eq!(
        google.gate.write_statuses().await,
        [200, 412, 200],
        "{stats}"
    );
    let objects = google.read_objects(&bucket, "");
    let mut all_ids = ids.clone();
    all_ids.extend(more_ids);
    let mut all_events = events.clone();
    all_events.extend(more);
    assert_same_events(&all_ids, &all_events, &received(&objects));
}

#[tokio::test]
async fn gcs_an_answer_lost_after_the_write_is_retried_and_finds_the_object_written() {
    let google = Google::start();
    let bucket = google.create_bucket();
    google.gate.control("POST", "/control/lose?n=1", None).await;
    let mut args = one_batch();
    args.extend(["--retry-schedule".to_owned(), "0s,0s,0s".to_owned()]);
    let setup = Setup::new(
        &args,
        "gcs",
        google.config(&bucket, ""),
        google.gate.credential(),
    )
    .await;
    let events = sample_events(5);
    let ids = setup.publish(&events).await;
    for d in setup.wait_for("succeeded", ids.len()).await {
        assert_eq!(outcomes(&d), ["retryable_error", "succeeded"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(
            error.starts_with("backendError: Backend Error (HTTP 503); upload gs://"),
            "{error}"
        );
        assert_eq!(d["attempts"][1]["status_code"], 412, "{d}");
    }
    let stats = google.gate.stats().await;
    assert_eq!(google.gate.write_statuses().await, [503, 412], "{stats}");
    let paths: Vec<&str> = stats["api"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths[0], paths[1], "the retry uploaded under the same name");
    let objects = google.read_objects(&bucket, "");
    assert_eq!(objects.as_array().unwrap().len(), 1, "{objects}");
    assert_gzip_object(&objects[0], "");
    assert_same_events(&ids, &events, &received(&objects));
}

#[tokio::test]
async fn gcs_a_revoked_token_is_replaced_once_and_the_upload_sent_again() {
    let google = Google::start();
    let bucket = google.create_bucket();
    let setup = Setup::new(
        &one_batch(),
        "gcs",
        google.config(&bucket, ""),
        google.gate.credential(),
    )
    .await;
    let first = sample_events(2);
    let first_ids = setup.publish(&first).await;
    setup.wait_for("succeeded", first_ids.len()).await;
    google.gate.control("POST", "/control/revoke", None).await;
    let second = sample_events(3);
    let second_ids = setup.publish(&second).await;
    for d in setup.wait_for("succeeded", 5).await {
        assert_eq!(outcomes(&d), ["succeeded"], "{d}");
    }
    let stats = google.gate.stats().await;
    assert_eq!(stats["tokens_issued"], 2, "{stats}");
    assert_eq!(
        google.gate.write_statuses().await,
        [200, 401, 200],
        "{stats}"
    );
    let tokens: Vec<&str> = stats["api"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["token"].as_str().unwrap())
        .collect();
    assert_eq!(tokens[0], tokens[1], "the session's token, until revoked");
    assert_ne!(tokens[1], tokens[2], "a new token after the 401");
    let mut ids = first_ids;
    ids.extend(second_ids);
    let mut events = first;
    events.extend(second);
    assert_same_events(&ids, &events, &received(&google.read_objects(&bucket, "")));
}

#[tokio::test]
async fn gcs_a_key_the_token_endpoint_does_not_know_is_a_permanent_error_with_invalid_grant() {
    let google = Google::start();
    let bucket = google.create_bucket();
    // The same service account's email and token URI, with another key pair.
    let wrong = google.gate.unknown_key();
    let setup = Setup::new(
        &fast_retries(),
        "gcs",
        google.config(&bucket, ""),
        Some(("gcp_service_account", wrong.clone())),
    )
    .await;
    setup.publish(&sample_events(2)).await;
    for d in setup.wait_for("failed", 2).await {
        assert_eq!(outcomes(&d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(
            error.contains(
                "refused the assertion: invalid_grant: Invalid JWT Signature. (HTTP 400)"
            ),
            "{error}"
        );
        assert_eq!(d["attempts"][0]["status_code"], 400, "{d}");
        assert_no_key_material(&d.to_string(), &wrong);
    }
    let stats = google.gate.stats().await;
    assert_eq!(stats["tokens_issued"], 0, "{stats}");
    assert_eq!(
        stats["api"],
        json!([]),
        "no upload without a token: {stats}"
    );
    assert_eq!(stats["refused"][0], invalid_signature());
    assert!(google
        .read_objects(&bucket, "")
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn gcs_a_missing_bucket_is_a_permanent_error_with_notfound() {
    let google = Google::start();
    let bucket = unique("missing").replace('_', "-").to_lowercase();
    let setup = Setup::new(
        &fast_retries(),
        "gcs",
        google.config(&bucket, ""),
        google.gate.credential(),
    )
    .await;
    let ids = setup.publish(&sample_events(2)).await;
    for d in setup.wait_for("failed", ids.len()).await {
        assert_eq!(outcomes(&d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(error.contains("notFound"), "{error}");
        assert!(
            error.contains(&format!("; upload gs://{bucket}/")),
            "{error}"
        );
        assert_eq!(d["attempts"][0]["status_code"], 404, "{d}");
    }
}
