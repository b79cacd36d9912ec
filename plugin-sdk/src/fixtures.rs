//! What plugin unit tests build again and again: an event and an HTTP answer. Behind the
//! `fixtures` feature, for a plugin's `[dev-dependencies]`; never in a component.

use serde_json::Value;

use crate::{http, Event};

/// 2026-03-07T09:05:00.250Z, in milliseconds since the epoch: the time of [`event`].
pub const TIME: u64 = 1_772_874_300_250;

/// An `order.created` event at [`TIME`] with `payload` as its JSON body.
pub fn event(id: &str, payload: Value) -> Event {
    event_at(id, TIME, payload)
}

/// An `order.created` event at `occurred_at` (milliseconds) with `payload` as its JSON body.
pub fn event_at(id: &str, occurred_at: u64, payload: Value) -> Event {
    Event {
        id: id.to_owned(),
        event_type: "order.created".to_owned(),
        occurred_at,
        payload: payload.to_string().into_bytes(),
        attributes: Vec::new(),
    }
}

/// An answer with this status, these headers and this body.
pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response {
    http::Response {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}
