//! The JSON objects of API.md, built from store rows.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::clock::{opt_rfc3339, to_rfc3339};
use crate::store::{AttemptRow, CredentialRow, DeliveryRow, DestinationRow};

#[derive(Serialize)]
pub struct Destination {
    pub id: String,
    #[serde(rename = "type")]
    pub type_id: String,
    pub name: String,
    pub config: Value,
    pub credential_id: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why Pushrail disabled it (an extension of API.md): its every batch failed for the
    /// configured window. `null` while enabled or when the customer disabled it.
    pub disabled_reason: Option<String>,
    /// `open` after `--circuit-after` batches in a row delivered nothing (an extension of
    /// API.md): its queued deliveries wait and one at a time probes it; else `closed`.
    pub circuit: &'static str,
    /// While the circuit is open: when the next probe may go.
    pub next_probe_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<DestinationRow> for Destination {
    fn from(row: DestinationRow) -> Self {
        let enabled = row.enabled();
        let circuit = row.circuit();
        Self {
            id: row.id,
            type_id: row.type_id,
            name: row.name,
            config: serde_json::from_str(&row.config).unwrap_or(Value::Null),
            credential_id: row.credential_id,
            event_types: serde_json::from_str(&row.event_types).unwrap_or_default(),
            enabled,
            disabled_reason: row.disabled_reason,
            circuit,
            next_probe_at: opt_rfc3339(row.circuit_until),
            created_at: to_rfc3339(row.created_at),
            updated_at: to_rfc3339(row.updated_at),
        }
    }
}

#[derive(Serialize)]
pub struct Credential {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub created_at: String,
    pub rotated_at: Option<String>,
    pub fingerprint: String,
}

impl From<CredentialRow> for Credential {
    fn from(row: CredentialRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            kind: row.kind,
            created_at: to_rfc3339(row.created_at),
            rotated_at: opt_rfc3339(row.rotated_at),
            fingerprint: row.fingerprint,
        }
    }
}

#[derive(Serialize)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub destination_id: String,
    pub status: String,
    pub attempt_count: i64,
    pub next_attempt_at: Option<String>,
    /// `open_circuit` while it waits on its destination's open circuit (an extension of API.md):
    /// it is not attempted until a probe gets through, and `next_attempt_at` is no earlier
    /// than the next probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_on: Option<&'static str>,
    pub created_at: String,
    pub updated_at: String,
    /// The event's payload, exactly the JSON the vendor published; in a delivery's detail only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<Vec<Attempt>>,
}

/// A stored payload (JSON text, checked at ingest) as it goes out: verbatim, keys in the
/// vendor's order and numbers as written; `null` should the text ever not parse.
pub fn payload(text: String) -> Box<RawValue> {
    RawValue::from_string(text).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

impl From<DeliveryRow> for Delivery {
    fn from(row: DeliveryRow) -> Self {
        // The queue keeps a due time on rows in flight too; only a waiting delivery has a next attempt.
        let next = if row.status == "pending" {
            row.next_attempt_at.max(row.circuit_until)
        } else {
            None
        };
        let waiting_on = row.circuit_until.map(|_| "open_circuit");
        Self {
            id: row.id,
            event_id: row.event_id,
            event_type: row.event_type,
            destination_id: row.destination_id,
            status: row.status,
            attempt_count: row.attempt_count,
            next_attempt_at: opt_rfc3339(next),
            waiting_on,
            created_at: to_rfc3339(row.created_at),
            updated_at: to_rfc3339(row.updated_at),
            payload: None,
            attempts: None,
        }
    }
}

#[derive(Serialize)]
pub struct Attempt {
    pub n: i64,
    pub started_at: String,
    pub duration_ms: i64,
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_excerpt: Option<String>,
}

impl From<AttemptRow> for Attempt {
    fn from(row: AttemptRow) -> Self {
        Self {
            n: row.n,
            started_at: to_rfc3339(row.started_at),
            duration_ms: row.duration_ms,
            outcome: row.outcome,
            status_code: row.status_code,
            error: row.error,
            response_excerpt: row.response_excerpt,
        }
    }
}

#[derive(Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Serialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}
