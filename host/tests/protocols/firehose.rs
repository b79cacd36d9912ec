//! `firehose` against moto server (PyPI `moto[server]`) started by each test on a free port: a
//! Direct PUT stream whose destination is an S3 bucket, and the objects it wrote read back with
//! boto3. moto writes each `PutRecordBatch` at once as one object, the records' data concatenated.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::support::{
    assert_batched, assert_same_events, aws, free_port, moto, outcomes, sample_events, unique,
    Setup,
};

/// Firehose's limit on one `PutRecordBatch` request.
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

fn credential() -> Option<(&'static str, Value)> {
    Some((
        "aws_access_key",
        json!({ "access_key_id": "AKIDPUSHRAILTEST", "secret_access_key": "not-checked-here" }),
    ))
}

fn config(port: u16, stream: &str) -> Value {
    json!({
        "delivery_stream_name": stream, "region": "us-east-1",
        "endpoint": format!("http://127.0.0.1:{port}"),
    })
}

/// A bucket and a stream that writes to it: (stream, bucket).
fn stream_to_bucket(port: u16) -> (String, String) {
    // S3 bucket names: lower case, digits and hyphens.
    let bucket = unique("pushrail-fh").replace('_', "-").to_lowercase();
    aws(port, &["create-bucket", &bucket]);
    let stream = unique("pushrail");
    aws(port, &["create-firehose", &stream, &bucket]);
    (stream, bucket)
}

/// The records of every object, by event id: (type, payload); each event once.
fn received(objects: &Value) -> BTreeMap<String, (String, Value)> {
    let mut out = BTreeMap::new();
    for object in objects.as_array().unwrap() {
        for line in object["records"].as_array().unwrap() {
            let id = line["id"].as_str().unwrap().to_owned();
            assert!(line["occurred_at"].is_string(), "{line}");
            let previous = out.insert(
                id.clone(),
                (
                    line["type"].as_str().unwrap().to_owned(),
                    line["payload"].clone(),
                ),
            );
            assert!(previous.is_none(), "{id} was written twice");
        }
    }
    out
}

#[tokio::test]
async fn firehose_puts_a_batch_that_its_s3_destination_writes_as_ndjson() {
    let port = free_port();
    let _moto = moto(port, None);
    let (stream, bucket) = stream_to_bucket(port);
    let setup = Setup::new(&[], "firehose", config(port, &stream), credential()).await;
    let events = sample_events(6);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    assert_batched(&delivered);
    for d in &delivered {
        assert_eq!(outcomes(d), ["succeeded"], "{d}");
        let excerpt = d["attempts"][0]["response_excerpt"].as_str().unwrap_or("");
        assert!(excerpt.starts_with("RecordId "), "{d}");
    }
    // read-objects checks that each object is newline-terminated NDJSON: one line per record.
    let objects = aws(port, &["read-objects", &bucket, ""]);
    let largest = objects
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["records"].as_array().unwrap().len())
        .max()
        .unwrap_or(0);
    assert!(
        largest > 1,
        "the records of one batch are one object: {objects}"
    );
    assert_same_events(&ids, &events, &received(&objects));
}

#[tokio::test]
async fn firehose_a_batch_over_4_mib_is_put_in_requests_under_4_mib_and_each_record_is_written_once(
) {
    let port = free_port();
    let _moto = moto(port, None);
    let (stream, bucket) = stream_to_bucket(port);
    let setup = Setup::new(&[], "firehose", config(port, &stream), credential()).await;
    // Fifteen records of about 244 KiB: 3.6 MiB of data, 4.8 MiB in base64 (as the request
    // carries them), so more than one request.
    let events: Vec<(String, Value)> = (0..15)
        .map(|i| {
            (
                "order.created".to_owned(),
                json!({ "i": i, "blob": "x".repeat(250_000) }),
            )
        })
        .collect();
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    assert_batched(&delivered);
    let objects = aws(port, &["read-objects", &bucket, ""]);
    let objects = objects.as_array().unwrap();
    assert!(objects.len() >= 2, "{} objects", objects.len());
    for object in objects {
        // One object per request: its records, as the request carried them, fit in 4 MiB.
        let records = object["records"].as_array().unwrap();
        let in_request: usize = records
            .iter()
            .map(|r| (serde_json::to_string(r).unwrap().len() + 1).div_ceil(3) * 4 + 12)
            .sum();
        assert!(
            in_request <= MAX_REQUEST_BYTES,
            "{} records of {in_request} bytes in one request",
            records.len()
        );
    }
    assert_same_events(&ids, &events, &received(&Value::Array(objects.clone())));
}

#[tokio::test]
async fn firehose_a_missing_stream_is_a_permanent_error_with_awss_code() {
    let port = free_port();
    let _moto = moto(port, None);
    let setup = Setup::new(
        &[],
        "firehose",
        config(port, &unique("pushrail-missing")),
        credential(),
    )
    .await;
    let ids = setup.publish(&sample_events(2)).await;
    let failed = setup.wait_for("failed", ids.len()).await;
    for d in &failed {
        assert_eq!(outcomes(d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(
            error.starts_with("ResourceNotFoundException: Firehose pushrail-missing"),
            "AWS's code and message: {error}"
        );
        assert!(!error.contains("not-checked-here"), "no secret in the log");
    }
}
