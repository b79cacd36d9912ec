//! `kinesis` against moto server (PyPI `moto[server]`) started by each test on a free port;
//! streams are created and read back from every shard with boto3.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::support::{
    assert_same_events, aws, free_port, moto, outcomes, sample_events, unique, Setup,
};

fn credential() -> Option<(&'static str, Value)> {
    Some((
        "aws_access_key",
        json!({ "access_key_id": "AKIDPUSHRAILTEST", "secret_access_key": "not-checked-here" }),
    ))
}

/// The records read back, by event id: (type, payload); each record is one NDJSON line.
fn received(records: &Value) -> BTreeMap<String, (String, Value)> {
    let mut out = BTreeMap::new();
    for r in records.as_array().unwrap() {
        let data = r["data"].as_str().unwrap();
        assert!(
            data.ends_with('\n'),
            "a record is one newline-terminated line: {r}"
        );
        let line: Value = serde_json::from_str(data.trim_end()).unwrap();
        let id = line["id"].as_str().unwrap().to_owned();
        let previous = out.insert(
            id.clone(),
            (
                line["type"].as_str().unwrap().to_owned(),
                line["payload"].clone(),
            ),
        );
        assert!(previous.is_none(), "{id} was written twice");
    }
    out
}

#[tokio::test]
async fn kinesis_puts_a_batch_with_partition_keys_from_the_template() {
    let port = free_port();
    let _moto = moto(port, None);
    let stream = unique("pushrail");
    aws(port, &["create-stream", &stream]);
    let setup = Setup::new(
        &[],
        "kinesis",
        json!({
            "stream_name": stream, "region": "us-east-1",
            "endpoint": format!("http://127.0.0.1:{port}"),
            "partition_key": "order-{{payload.order}}"
        }),
        credential(),
    )
    .await;
    let events = sample_events(6);
    let ids = setup.publish(&events).await;
    for d in setup.wait_for("succeeded", ids.len()).await {
        assert_eq!(outcomes(&d), ["succeeded"], "{d}");
    }
    let records = aws(port, &["read-stream", &stream, &ids.len().to_string()]);
    for r in records.as_array().unwrap() {
        let line: Value = serde_json::from_str(r["data"].as_str().unwrap().trim_end()).unwrap();
        assert_eq!(
            r["partition_key"],
            format!("order-{}", line["payload"]["order"]),
            "{r}"
        );
    }
    assert_same_events(&ids, &events, &received(&records));
}

#[tokio::test]
async fn kinesis_a_record_with_a_partition_key_over_the_limit_fails_alone_and_its_batch_mates_are_written_once(
) {
    let port = free_port();
    let _moto = moto(port, None);
    let stream = unique("pushrail");
    aws(port, &["create-stream", &stream]);
    // The partition key comes from the payload: one event's key is longer than Kinesis takes.
    let setup = Setup::new(
        &[],
        "kinesis",
        json!({
            "stream_name": stream, "region": "us-east-1",
            "endpoint": format!("http://127.0.0.1:{port}"),
            "partition_key": "{{payload.key}}"
        }),
        credential(),
    )
    .await;
    let events: Vec<(String, Value)> = (0..5)
        .map(|i| {
            let key = if i == 2 {
                "k".repeat(300)
            } else {
                format!("k{i}")
            };
            ("order.created".to_owned(), json!({ "i": i, "key": key }))
        })
        .collect();
    let ids = setup.publish(&events).await;
    let settled = setup.settle(ids.len()).await;
    for d in &settled {
        let refused = d["event_id"] == ids[2].as_str();
        assert_eq!(
            d["status"],
            if refused { "failed" } else { "succeeded" },
            "{d}"
        );
        let detail = setup.customer.delivery(d["id"].as_str().unwrap()).await;
        if refused {
            assert_eq!(outcomes(&detail), ["permanent_error"], "{detail}");
        } else {
            assert_eq!(outcomes(&detail), ["succeeded"], "{detail}");
        }
    }
    let records = aws(port, &["read-stream", &stream, "4"]);
    let mut expected_ids = ids.clone();
    expected_ids.remove(2);
    let mut expected_events = events.clone();
    expected_events.remove(2);
    assert_same_events(&expected_ids, &expected_events, &received(&records));
}
