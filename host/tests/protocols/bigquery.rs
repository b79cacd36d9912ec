//! `bigquery` against the BigQuery fake of `peer_gcp.py serve` (no BigQuery emulator exists):
//! the token endpoint verifies the RS256 assertion with the public half of a key pair made for
//! the test, the gate checks the bearer token on every insertAll, and the fake checks the request
//! shape and each row against the table's schema as BigQuery does (see the script's docstring).

use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::google::{assert_no_key_material, invalid_signature, Gate};
use crate::support::{assert_batched, assert_same_events, fast_retries, outcomes, unique, Setup};

const SCOPE: &str = "https://www.googleapis.com/auth/bigquery.insertdata";
const PROJECT: &str = "pushrail-test";
const DATASET: &str = "events";

/// The table the README tells customers to create; `type_max` limits the type column's length
/// (a STRING(n) column), so the fake refuses a row with a longer type.
fn schema(type_max: Option<u32>) -> Value {
    let mut kind = json!({ "name": "type", "type": "STRING", "mode": "REQUIRED" });
    if let Some(max) = type_max {
        kind["maxLength"] = json!(max);
    }
    json!([
        { "name": "id", "type": "STRING", "mode": "REQUIRED" },
        kind,
        { "name": "occurred_at", "type": "TIMESTAMP", "mode": "REQUIRED" },
        { "name": "payload", "type": "JSON" }
    ])
}

async fn create_table(gate: &Gate, type_max: Option<u32>) -> String {
    let table = unique("events");
    gate.control(
        "POST",
        "/control/tables",
        Some(json!({ "project": PROJECT, "dataset": DATASET, "table": table, "schema": schema(type_max) })),
    )
    .await;
    table
}

fn config(gate: &Gate, table: &str) -> Value {
    json!({ "project_id": PROJECT, "dataset_id": DATASET, "table_id": table, "endpoint": gate.endpoint() })
}

async fn rows(gate: &Gate, table: &str) -> Vec<Value> {
    let answer = gate
        .control(
            "GET",
            &format!("/control/rows?table={PROJECT}:{DATASET}.{table}"),
            None,
        )
        .await;
    answer["rows"].as_array().unwrap().clone()
}

/// The rows by event id: (type, payload), each row's insertId its event id, the payload the text
/// of a JSON value; no event twice.
fn received(rows: &[Value]) -> BTreeMap<String, (String, Value)> {
    let mut out = BTreeMap::new();
    for row in rows {
        let json = &row["json"];
        let id = json["id"].as_str().unwrap().to_owned();
        assert_eq!(row["insertId"], id.as_str(), "insertId = event id: {row}");
        assert!(
            json["occurred_at"].as_str().unwrap().ends_with('Z'),
            "{row}"
        );
        let payload: Value = serde_json::from_str(json["payload"].as_str().unwrap()).unwrap();
        let previous = out.insert(
            id.clone(),
            (json["type"].as_str().unwrap().to_owned(), payload),
        );
        assert!(previous.is_none(), "{id} was inserted twice");
    }
    out
}

fn one_batch() -> Vec<String> {
    vec!["--batch-linger".to_owned(), "300ms".to_owned()]
}

#[tokio::test]
async fn bigquery_inserts_a_batch_as_rows_with_insert_ids_and_keeps_its_token() {
    let gate = Gate::start("bigquery", SCOPE);
    let table = create_table(&gate, None).await;
    let setup = Setup::new(
        &one_batch(),
        "bigquery",
        config(&gate, &table),
        gate.credential(),
    )
    .await;
    let events = crate::support::sample_events(6);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    assert_batched(&delivered);
    for d in &delivered {
        assert_eq!(outcomes(d), ["succeeded"], "{d}");
        let excerpt = d["attempts"][0]["response_excerpt"].as_str().unwrap();
        assert_eq!(
            excerpt,
            format!("inserted into {PROJECT}:{DATASET}.{table} (6 of 6 rows of the request)")
        );
    }
    assert_same_events(&ids, &events, &received(&rows(&gate, &table).await));

    let more = crate::support::sample_events(3);
    let more_ids = setup.publish(&more).await;
    setup
        .wait_for("succeeded", ids.len() + more_ids.len())
        .await;
    let stats = gate.stats().await;
    assert_eq!(stats["tokens_issued"], 1, "the token is kept: {stats}");
    assert_eq!(gate.write_statuses().await, [200, 200], "{stats}");
    let mut all_ids = ids;
    all_ids.extend(more_ids);
    let mut all_events = events;
    all_events.extend(more);
    assert_same_events(&all_ids, &all_events, &received(&rows(&gate, &table).await));
}

#[tokio::test]
async fn bigquery_a_row_the_table_refuses_fails_alone_and_the_rest_are_inserted() {
    let gate = Gate::start("bigquery", SCOPE);
    // type is a STRING(20) column: a longer type is refused by the table.
    let table = create_table(&gate, Some(20)).await;
    let setup = Setup::new(
        &one_batch(),
        "bigquery",
        config(&gate, &table),
        gate.credential(),
    )
    .await;
    let mut events = crate::support::sample_events(5);
    events[2].0 = "order.line_item.quantity_changed".to_owned();
    let ids = setup.publish(&events).await;
    let settled = setup.settle(ids.len()).await;
    let refused_id = &ids[2];
    for summary in &settled {
        let d = setup
            .customer
            .delivery(summary["id"].as_str().unwrap())
            .await;
        if d["event_id"] == refused_id.as_str() {
            assert_eq!(d["status"], "failed", "{d}");
            assert_eq!(outcomes(&d), ["permanent_error"], "{d}");
            let error = d["attempts"][0]["error"].as_str().unwrap();
            assert!(
                error.starts_with("BigQuery refused the row: invalid: Field type: STRING(20) has a value of length 32"),
                "{error}"
            );
            assert!(error.ends_with("(column type)"), "{error}");
        } else {
            assert_eq!(d["status"], "succeeded", "{d}");
            assert_eq!(outcomes(&d), ["succeeded"], "{d}");
        }
    }
    let stored = received(&rows(&gate, &table).await);
    assert_eq!(stored.len(), 4);
    assert!(!stored.contains_key(refused_id.as_str()));
    let mut kept_ids = ids.clone();
    kept_ids.remove(2);
    let mut kept = events.clone();
    kept.remove(2);
    assert_same_events(&kept_ids, &kept, &stored);
}

#[tokio::test]
async fn bigquery_an_answer_lost_after_the_insert_is_retried_and_not_inserted_twice() {
    let gate = Gate::start("bigquery", SCOPE);
    let table = create_table(&gate, None).await;
    gate.control("POST", "/control/lose?n=1", None).await;
    let mut args = one_batch();
    args.extend(["--retry-schedule".to_owned(), "0s,0s,0s".to_owned()]);
    let setup = Setup::new(&args, "bigquery", config(&gate, &table), gate.credential()).await;
    let events = crate::support::sample_events(4);
    let ids = setup.publish(&events).await;
    for d in setup.wait_for("succeeded", ids.len()).await {
        assert_eq!(outcomes(&d), ["retryable_error", "succeeded"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(
            error.starts_with("backendError: Backend Error (HTTP 503); insertAll "),
            "{error}"
        );
    }
    assert_eq!(gate.write_statuses().await, [503, 200]);
    // The retry sent the same insertIds; the table kept one row per event.
    let stored = rows(&gate, &table).await;
    assert_eq!(stored.len(), 4, "{stored:?}");
    assert_same_events(&ids, &events, &received(&stored));
}

#[tokio::test]
async fn bigquery_a_key_the_token_endpoint_does_not_know_is_a_permanent_error() {
    let gate = Gate::start("bigquery", SCOPE);
    let table = create_table(&gate, None).await;
    let wrong = gate.unknown_key();
    let setup = Setup::new(
        &fast_retries(),
        "bigquery",
        config(&gate, &table),
        Some(("gcp_service_account", wrong.clone())),
    )
    .await;
    setup.publish(&crate::support::sample_events(2)).await;
    for d in setup.wait_for("failed", 2).await {
        assert_eq!(outcomes(&d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(
            error.contains(
                "refused the assertion: invalid_grant: Invalid JWT Signature. (HTTP 400)"
            ),
            "{error}"
        );
        assert_no_key_material(&d.to_string(), &wrong);
    }
    let stats = gate.stats().await;
    assert_eq!(stats["tokens_issued"], 0, "{stats}");
    assert_eq!(stats["api"], json!([]), "no insertAll without a token");
    assert_eq!(stats["refused"][0], invalid_signature());
    assert!(rows(&gate, &table).await.is_empty());
}

#[tokio::test]
async fn bigquery_a_missing_table_is_a_permanent_error_with_notfound() {
    let gate = Gate::start("bigquery", SCOPE);
    let table = unique("missing");
    let setup = Setup::new(
        &fast_retries(),
        "bigquery",
        config(&gate, &table),
        gate.credential(),
    )
    .await;
    let ids = setup.publish(&crate::support::sample_events(2)).await;
    for d in setup.wait_for("failed", ids.len()).await {
        assert_eq!(outcomes(&d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert_eq!(
            error,
            format!("notFound: Not found: Table {PROJECT}:{DATASET}.{table} (HTTP 404); insertAll {PROJECT}:{DATASET}.{table}")
        );
        assert_eq!(d["attempts"][0]["status_code"], 404, "{d}");
    }
}
