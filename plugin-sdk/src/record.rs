//! An event as one JSON record, `{"id", "type", "occurred_at", "payload"}`: the SQS message
//! body, the NDJSON line of an object per batch, the record of a stream. Consumers read the id
//! and type from it to de-duplicate.

use serde_json::{json, Value};

use crate::{Event, Failure};

/// The record of `event`: its payload parsed as JSON (a payload that is not JSON fails the
/// event, permanently), `occurred_at` in RFC 3339 (UTC).
pub fn event_record(event: &Event) -> Result<Value, Failure> {
    let payload: Value = serde_json::from_slice(&event.payload)
        .map_err(|_| Failure::permanent("the event payload is not JSON"))?;
    event_record_with_payload(event, payload)
}

/// [`event_record`] with a payload the caller already parsed.
pub fn event_record_with_payload(event: &Event, payload: Value) -> Result<Value, Failure> {
    Ok(json!({
        "id": event.id,
        "type": event.event_type,
        "occurred_at": rfc3339(event.occurred_at)?,
        "payload": payload,
    }))
}

/// Milliseconds since the Unix epoch as RFC 3339 in UTC (`2026-03-07T09:05:00.25Z`).
pub fn rfc3339(ms: u64) -> Result<String, Failure> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .ok_or_else(|| Failure::permanent("the event time is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_record() {
        let event = Event {
            id: "evt_1".to_owned(),
            event_type: "order.created".to_owned(),
            occurred_at: 1_772_874_300_250,
            payload: br#"{"a":1}"#.to_vec(),
            attributes: Vec::new(),
        };
        assert_eq!(
            event_record(&event).unwrap(),
            json!({
                "id": "evt_1", "type": "order.created",
                "occurred_at": "2026-03-07T09:05:00.25Z", "payload": { "a": 1 }
            })
        );
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        let not_json = Event {
            payload: b"{".to_vec(),
            ..event
        };
        assert!(event_record(&not_json).is_err());
    }
}
