//! The adapter between the WIT exports and the [`Destination`] trait.

use std::cell::RefCell;

use crate::bindings::exports::pushrail::destination::plugin::{GuestSession, Session};
use crate::bindings::pushrail::destination::types::{DestinationType, Outcome};
use crate::{Credential, Destination, Event, Failure, FieldError};

pub fn describe<D: Destination>() -> DestinationType {
    D::info().into_wit()
}

pub fn validate<D: Destination>(config: &str) -> Vec<FieldError> {
    match parse_config::<D>(config) {
        Ok(config) => D::validate(&config),
        Err(error) => vec![error],
    }
}

pub fn open<D: Destination>(config: &str, credential: Option<Credential>) -> Result<D, Failure> {
    let config = parse_config::<D>(config)
        .map_err(|e| Failure::permanent(format!("invalid config: {}: {}", e.field, e.message)))?;
    D::open(config, credential)
}

/// A plugin's session as the `session` resource. The component model hands methods `&self`;
/// one call runs at a time, so a `RefCell` is all the mutability needs.
pub struct SessionOf<D>(RefCell<D>);

impl<D: Destination> GuestSession for SessionOf<D> {
    fn open(config: String, credential: Option<Credential>) -> Result<Session, Failure> {
        open::<D>(&config, credential).map(|d| Session::new(SessionOf(RefCell::new(d))))
    }

    fn deliver(&self, events: Vec<Event>) -> Vec<Outcome> {
        let results = self.0.borrow_mut().deliver(&events);
        // Pairing by position: a plugin answering for fewer events leaves the rest unanswered,
        // which the host reports and retries.
        events
            .into_iter()
            .zip(results)
            .map(|(event, answer)| Outcome {
                event_id: event.id,
                answer,
            })
            .collect()
    }
}

fn parse_config<D: Destination>(config: &str) -> Result<D::Config, FieldError> {
    serde_json::from_str(config).map_err(|e| FieldError {
        field: "config".to_owned(),
        message: e.to_string(),
    })
}
