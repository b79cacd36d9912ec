//! The `bigquery` destination: each event becomes one row of a BigQuery table, streamed with
//! `tabledata.insertAll` (`POST /bigquery/v2/projects/{project}/datasets/{dataset}/tables/{table}/insertAll`).
//! The row is `{"id", "type", "occurred_at", "payload"}` with the payload as the text of a JSON
//! column, and its `insertId` is the event id, so BigQuery drops a row a retry sends again. Rows
//! are sent with `skipInvalidRows`: a row the table refuses comes back in `insertErrors` and fails
//! alone, the others are inserted. Requests carry an OAuth 2.0 access token of the service
//! account (the SDK's Google layer: JWT-bearer flow, token kept in the session).

use std::time::Duration;

use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::{batch, gcp, record, settings};
use serde::Deserialize;
use serde_json::json;

/// Rows per `insertAll` request: Google's recommended maximum (the hard limit is 50,000).
const MAX_ROWS: usize = 500;
/// Bytes of rows per request: BigQuery refuses requests over 10 MB; this leaves room for the
/// request's envelope.
const MAX_REQUEST_BYTES: usize = 9 * 1024 * 1024;
/// The API's endpoint.
const DEFAULT_ENDPOINT: &str = "https://bigquery.googleapis.com";
/// Longest Google message kept per refused row.
const MAX_ROW_MESSAGE_CHARS: usize = 300;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    project_id: String,
    dataset_id: String,
    table_id: String,
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

/// A destination's session: the table's `insertAll` URL and the service account's access (its
/// token is kept between batches until shortly before it expires).
struct BigQuery {
    /// `project:dataset.table`, as BigQuery names a table in its messages.
    table: String,
    url: String,
    auth: gcp::Auth,
    timeout: Duration,
}

impl Destination for BigQuery {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "bigquery",
            "BigQuery",
            "Streams each event as a row {id, type, occurred_at, payload} into a BigQuery table with insertAll; insertId = event id, so a retried row is not inserted twice. The service account needs the BigQuery Data Editor role (roles/bigquery.dataEditor) on the dataset or table.",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["project_id", "dataset_id", "table_id"],
            "additionalProperties": false,
            "properties": {
                "project_id": {
                    "type": "string", "title": "Project", "minLength": 1, "maxLength": 100,
                    "description": "The project that holds the dataset, e.g. acme-analytics."
                },
                "dataset_id": {
                    "type": "string", "title": "Dataset", "pattern": "^[A-Za-z0-9_]+$",
                    "minLength": 1, "maxLength": 1024,
                    "description": "The dataset's id, e.g. events (letters, digits and _)."
                },
                "table_id": {
                    "type": "string", "title": "Table", "minLength": 1, "maxLength": 1024,
                    "description": "The table's id, e.g. pushrail_events. It needs the columns id STRING, type STRING, occurred_at TIMESTAMP and payload JSON (see the type's README for the DDL)."
                },
                "endpoint": gcp::endpoint_schema(
                    "The BigQuery API's base URL, for local peers and private endpoints. Default: https://bigquery.googleapis.com. The token endpoint is the key file's token_uri."
                ),
                "timeout_ms": settings::timeout_schema()
            }
        }))
        .credentials(gcp::CREDENTIAL_KINDS, gcp::credential_schema(), true)
        .max_batch_size(MAX_ROWS as u32)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Err(message) = gcp::check_project_id(&config.project_id) {
            errors.push(FieldError::new("project_id", message));
        }
        if let Err(message) = check_dataset(&config.dataset_id) {
            errors.push(FieldError::new("dataset_id", message));
        }
        if let Err(message) = check_table(&config.table_id) {
            errors.push(FieldError::new("table_id", message));
        }
        errors.extend(gcp::validate_endpoint(config.endpoint.as_deref()));
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        let account = gcp::ServiceAccount::from_credential(credential.as_ref())?;
        gcp::check_project_id(&config.project_id)
            .map_err(|m| Failure::permanent(format!("project_id {m}")))?;
        check_dataset(&config.dataset_id)
            .map_err(|m| Failure::permanent(format!("dataset_id {m}")))?;
        check_table(&config.table_id).map_err(|m| Failure::permanent(format!("table_id {m}")))?;
        let endpoint = gcp::base_url(config.endpoint.as_deref(), DEFAULT_ENDPOINT)?;
        let url = format!(
            "{endpoint}/bigquery/v2/projects/{}/datasets/{}/tables/{}/insertAll",
            gcp::path_segment(&config.project_id),
            gcp::path_segment(&config.dataset_id),
            gcp::path_segment(&config.table_id)
        );
        let timeout = settings::timeout(config.timeout_ms);
        Ok(Self {
            table: format!(
                "{}:{}.{}",
                config.project_id, config.dataset_id, config.table_id
            ),
            url,
            auth: gcp::Auth::new(account, gcp::scopes::BIGQUERY_INSERTDATA, timeout),
            timeout,
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        let plan = self.plan(events);
        let table = &self.table;
        self.auth
            .send_plan(plan, |response, count| read_answer(table, response, count))
    }
}

/// A dataset id: letters, digits and underscores, at most 1024 characters.
fn check_dataset(dataset: &str) -> Result<(), String> {
    if dataset.is_empty() || dataset.len() > 1024 {
        return Err("must be 1 to 1024 characters".to_owned());
    }
    if !dataset
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err("may only have letters, digits and _".to_owned());
    }
    Ok(())
}

/// A table id: up to 1024 bytes of letters, marks, digits, connectors (`_`), dashes and spaces,
/// optionally with a partition decorator (`$20260307`).
fn check_table(table: &str) -> Result<(), String> {
    if table.is_empty() || table.len() > 1024 {
        return Err("must be 1 to 1024 bytes".to_owned());
    }
    let (name, decorator) = table.split_once('$').unwrap_or((table, ""));
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' '))
    {
        return Err("may only have letters, digits, _, - and spaces".to_owned());
    }
    if table.contains('$')
        && (decorator.is_empty() || !decorator.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("may end in a partition decorator of digits only ($20260307)".to_owned());
    }
    Ok(())
}

/// One event as an `insertAll` row: its `insertId` and the row's JSON text.
struct Row {
    json: String,
}

impl Row {
    fn size(&self) -> usize {
        self.json.len()
    }
}

/// The row of `event`: `{"insertId": id, "json": {"id", "type", "occurred_at", "payload"}}`, the
/// payload as its own JSON text (how `insertAll` takes a JSON column's value), checked to be JSON.
fn row(event: &Event) -> Result<Row, Failure> {
    let not_json = || Failure::permanent("the event payload is not JSON");
    serde_json::from_slice::<serde::de::IgnoredAny>(&event.payload).map_err(|_| not_json())?;
    let payload = std::str::from_utf8(&event.payload).map_err(|_| not_json())?;
    let row = json!({
        "insertId": event.id,
        "json": {
            "id": event.id,
            "type": event.event_type,
            "occurred_at": record::rfc3339(event.occurred_at)?,
            "payload": payload,
        }
    });
    Ok(Row {
        json: row.to_string(),
    })
}

impl BigQuery {
    /// The batch's `insertAll` requests; each request's events are in row index order.
    fn plan(&self, events: &[Event]) -> batch::Plan {
        let rows = events.iter().map(row).collect();
        batch::Plan::new(rows, Row::size, MAX_ROWS, MAX_REQUEST_BYTES, |rows| {
            self.request(rows)
        })
    }

    /// The `insertAll` of `rows` (the bearer token is added when it is sent). `skipInvalidRows`:
    /// the valid rows are inserted even when another is refused; `ignoreUnknownValues` stays
    /// off, so a table without a column of the row refuses it instead of dropping the value.
    fn request(&self, rows: &[Row]) -> Result<http::Request, http::Error> {
        let body = batch::json_array(
            r#"{"kind":"bigquery#tableDataInsertAllRequest","skipInvalidRows":true,"ignoreUnknownValues":false,"rows":["#,
            rows.iter().map(|row| row.json.as_str()),
            "]}",
        );
        Ok(http::Request::post(&self.url)?
            .timeout(self.timeout)
            .header("content-type", "application/json; charset=UTF-8")
            .body(body))
    }
}

#[derive(Deserialize)]
struct InsertAllAnswer {
    #[serde(rename = "insertErrors", default)]
    insert_errors: Vec<RowErrors>,
}

#[derive(Deserialize)]
struct RowErrors {
    index: usize,
    #[serde(default)]
    errors: Vec<RowError>,
}

#[derive(Deserialize)]
struct RowError {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Each row's outcome from the answer to an `insertAll` of `count` rows: a row in
/// `insertErrors` fails with its reason (`invalid` and other refusals permanent; `stopped`,
/// `timeout`, `backendError` retryable), the others were inserted. An error answer fails every
/// row with Google's reason.
fn read_answer(table: &str, response: &http::Response, count: usize) -> Vec<DeliveryResult> {
    let answer: InsertAllAnswer = match gcp::read_json(
        response,
        &format!("insertAll {table}"),
        "an insertAll result",
    ) {
        Ok(answer) => answer,
        Err(failure) => return vec![Err(failure); count],
    };
    let inserted = count
        - answer
            .insert_errors
            .iter()
            .filter(|e| e.index < count)
            .count();
    let mut outcomes: Vec<DeliveryResult> = vec![
        Ok(Delivered {
            status_code: Some(response.status),
            response_excerpt: Some(format!(
                "inserted into {table} ({inserted} of {count} rows of the request)"
            )),
        });
        count
    ];
    // An index out of range answers for nothing.
    for refused in answer.insert_errors {
        if let Some(slot) = outcomes.get_mut(refused.index) {
            *slot = Err(row_failure(&refused.errors).with_status(response.status));
        }
    }
    outcomes
}

/// A refused row's failure: its errors' reasons, locations and messages; retryable only when
/// every reason is (a row stopped because another was invalid, a timeout, a backend error).
fn row_failure(errors: &[RowError]) -> Failure {
    const RETRYABLE: &[&str] = &["stopped", "timeout", "backendError", "internalError"];
    if errors.is_empty() {
        return Failure::retryable("BigQuery refused the row without saying why");
    }
    let text = errors
        .iter()
        .map(|e| {
            let mut text = e.reason.clone().unwrap_or_else(|| "error".to_owned());
            if let Some(message) = e.message.as_deref().filter(|m| !m.is_empty()) {
                text.push_str(": ");
                text.extend(message.chars().take(MAX_ROW_MESSAGE_CHARS));
            }
            if let Some(location) = e.location.as_deref().filter(|l| !l.is_empty()) {
                text.push_str(&format!(" (column {location})"));
            }
            text
        })
        .collect::<Vec<_>>()
        .join("; ");
    let retryable = errors
        .iter()
        .all(|e| e.reason.as_deref().is_some_and(|r| RETRYABLE.contains(&r)));
    if retryable {
        Failure::retryable(text)
    } else {
        Failure::permanent(format!("BigQuery refused the row: {text}"))
    }
}

export_destination!(BigQuery);

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use pushrail_plugin_sdk::fixtures::{event, response};

    use super::*;

    const ENDPOINT: &str = "http://127.0.0.1:9050";
    const PRIVATE_KEY: &str = include_str!("../../../plugin-sdk/testdata/gcp-test-key.pem");

    fn config() -> Config {
        Config {
            project_id: "acme-analytics".to_owned(),
            dataset_id: "events".to_owned(),
            table_id: "pushrail_events".to_owned(),
            endpoint: Some(ENDPOINT.to_owned()),
            timeout_ms: 5000,
        }
    }

    fn credential() -> Credential {
        Credential {
            kind: "gcp_service_account".to_owned(),
            secret: json!({
                "type": "service_account",
                "project_id": "acme-analytics",
                "private_key_id": "0123456789abcdef",
                "private_key": PRIVATE_KEY,
                "client_email": "pushrail@acme-analytics.iam.gserviceaccount.com",
                "token_uri": "http://127.0.0.1:9051/token"
            })
            .to_string(),
        }
    }

    fn open() -> BigQuery {
        BigQuery::open(config(), Some(credential())).unwrap()
    }

    fn body(plan: &batch::Plan, i: usize) -> Value {
        let request = plan.requests[i].request.as_ref().unwrap();
        serde_json::from_slice(request.body_bytes()).unwrap()
    }

    #[test]
    fn a_batch_is_one_insert_all_with_insert_ids_and_json_payloads() {
        let bq = open();
        let mut not_json = event("evt_3", json!({}));
        not_json.payload = b"{nope".to_vec();
        let plan = bq.plan(&[
            event("evt_1", json!({ "a": 1, "s": "Zoë ☕" })),
            event("evt_2", json!([1, "two"])),
            not_json,
        ]);
        assert_eq!(plan.requests.len(), 1);
        assert_eq!(plan.requests[0].events, [0, 1]);
        let request = plan.requests[0].request.as_ref().unwrap();
        assert_eq!(request.method(), "POST");
        assert_eq!(
            request.url(),
            format!("{ENDPOINT}/bigquery/v2/projects/acme-analytics/datasets/events/tables/pushrail_events/insertAll")
        );
        assert_eq!(
            body(&plan, 0),
            json!({
                "kind": "bigquery#tableDataInsertAllRequest",
                "skipInvalidRows": true,
                "ignoreUnknownValues": false,
                "rows": [
                    { "insertId": "evt_1", "json": {
                        "id": "evt_1", "type": "order.created",
                        "occurred_at": "2026-03-07T09:05:00.25Z",
                        "payload": r#"{"a":1,"s":"Zoë ☕"}"# } },
                    { "insertId": "evt_2", "json": {
                        "id": "evt_2", "type": "order.created",
                        "occurred_at": "2026-03-07T09:05:00.25Z",
                        "payload": r#"[1,"two"]"# } }
                ]
            })
        );
        let refused = plan.results[2].clone().unwrap().unwrap_err();
        assert_eq!(refused.message, "the event payload is not JSON");
        assert_eq!(refused.kind, FailureKind::Permanent);
    }

    #[test]
    fn batches_split_at_500_rows() {
        let bq = open();
        let events: Vec<Event> = (0..501)
            .map(|i| event(&format!("evt_{i}"), json!({})))
            .collect();
        let plan = bq.plan(&events);
        assert_eq!(plan.requests.len(), 2);
        assert_eq!(plan.requests[0].events.len(), 500);
        assert_eq!(plan.requests[1].events, [500]);
    }

    #[test]
    fn a_refused_row_fails_alone() {
        let table = "acme-analytics:events.pushrail_events";
        let answer = json!({
            "kind": "bigquery#tableDataInsertAllResponse",
            "insertErrors": [
                { "index": 1, "errors": [{ "reason": "invalid", "location": "type",
                    "debugInfo": "", "message": "Field value of type exceeds the maximum length 20" }] },
                { "index": 7, "errors": [{ "reason": "invalid" }] }
            ]
        });
        let results = read_answer(table, &response(200, &[], &answer.to_string()), 3);
        assert!(results[0].is_ok() && results[2].is_ok());
        assert_eq!(
            results[0].clone().unwrap().response_excerpt.unwrap(),
            format!("inserted into {table} (2 of 3 rows of the request)")
        );
        let refused = results[1].clone().unwrap_err();
        assert_eq!(refused.kind, FailureKind::Permanent);
        assert_eq!(
            refused.message,
            "BigQuery refused the row: invalid: Field value of type exceeds the maximum length 20 (column type)"
        );
        // A row stopped because another was invalid (without skipInvalidRows) is tried again.
        let stopped = json!({ "insertErrors": [{ "index": 0, "errors": [{ "reason": "stopped", "message": "" }] }] });
        let results = read_answer(table, &response(200, &[], &stopped.to_string()), 1);
        assert_eq!(results[0].clone().unwrap_err().kind, FailureKind::Retryable);
    }

    #[test]
    fn error_answers_fail_every_row_with_googles_reason() {
        let table = "p:d.t";
        let error = |status: u16, reason: &str, message: &str| {
            json!({ "error": { "code": status, "message": message,
                "errors": [{ "message": message, "domain": "global", "reason": reason }],
                "status": "X" } })
            .to_string()
        };
        let missing = read_answer(
            table,
            &response(404, &[], &error(404, "notFound", "Not found: Table p:d.t")),
            2,
        );
        for result in &missing {
            let failure = result.clone().unwrap_err();
            assert_eq!(failure.kind, FailureKind::Permanent);
            assert_eq!(
                failure.message,
                "notFound: Not found: Table p:d.t (HTTP 404); insertAll p:d.t"
            );
        }
        for (status, reason) in [
            (403, "rateLimitExceeded"),
            (500, "backendError"),
            (503, "x"),
        ] {
            let failure = read_answer(
                table,
                &response(status, &[], &error(status, reason, "slow")),
                1,
            )[0]
            .clone()
            .unwrap_err();
            assert_eq!(failure.kind, FailureKind::Retryable, "{reason}");
        }
        for (status, reason) in [(403, "accessDenied"), (400, "invalid")] {
            let failure = read_answer(
                table,
                &response(status, &[], &error(status, reason, "no")),
                1,
            )[0]
            .clone()
            .unwrap_err();
            assert_eq!(failure.kind, FailureKind::Permanent, "{reason}");
        }
        let garbled = read_answer(table, &response(200, &[], "<html>"), 1)[0]
            .clone()
            .unwrap_err();
        assert_eq!(garbled.kind, FailureKind::Retryable);
    }

    #[test]
    fn validates_the_config() {
        let fields = |config: &Config| {
            BigQuery::validate(config)
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert!(fields(&config()).is_empty());
        let mut decorated = config();
        decorated.table_id = "events$20260307".to_owned();
        decorated.project_id = "example.com:acme-analytics".to_owned();
        assert!(fields(&decorated).is_empty());
        let bad = Config {
            project_id: "Acme".to_owned(),
            dataset_id: "my-dataset".to_owned(),
            table_id: "a/b".to_owned(),
            endpoint: Some("127.0.0.1:9050".to_owned()),
            timeout_ms: 5000,
        };
        assert_eq!(
            fields(&bad),
            ["project_id", "dataset_id", "table_id", "endpoint"]
        );
        for table in ["", "t$", "t$abc", "$1"] {
            let mut c = config();
            c.table_id = table.to_owned();
            assert_eq!(fields(&c), ["table_id"], "{table:?}");
        }
    }

    #[test]
    fn reads_the_config_and_opens_with_the_insertdata_scope() {
        let config: Config = serde_json::from_str(
            r#"{"project_id":"acme-analytics","dataset_id":"events","table_id":"t1"}"#,
        )
        .unwrap();
        assert!(config.endpoint.is_none());
        assert!(serde_json::from_str::<Config>(
            r#"{"project_id":"acme-analytics","dataset_id":"events","table_id":"t1","dataset":"x"}"#
        )
        .is_err());
        let bq = BigQuery::open(config, Some(credential())).unwrap();
        assert!(bq
            .url
            .starts_with("https://bigquery.googleapis.com/bigquery/v2/"));
        assert_eq!(bq.auth.tokens_fetched(), 0);
        assert!(BigQuery::open(self::config(), None).is_err());
        let request = bq
            .auth
            .account()
            .token_request(gcp::scopes::BIGQUERY_INSERTDATA, 1, Duration::from_secs(1))
            .unwrap();
        assert_eq!(request.url(), "http://127.0.0.1:9051/token");
        assert!(String::from_utf8_lossy(request.body_bytes()).contains("grant_type="));
    }

    #[test]
    fn describes_itself() {
        let text = format!("{:?}", BigQuery::info());
        assert!(text.contains("gcp_service_account"));
        assert!(text.contains("roles/bigquery.dataEditor"));
        assert!(text.contains("max_batch_size: 500"));
    }
}
