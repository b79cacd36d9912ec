//! The adapter between the WIT exports and the [`Destination`] trait.

use crate::bindings::pushrail::destination::types::{DeliveryRequest, DestinationType};
use crate::{Delivered, Destination, Failure, FieldError};

pub fn describe<D: Destination>() -> DestinationType {
    D::info().into_wit()
}

pub fn validate<D: Destination>(config: &str) -> Vec<FieldError> {
    match parse_config::<D>(config) {
        Ok(config) => D::validate(&config),
        Err(error) => vec![error],
    }
}

pub fn deliver<D: Destination>(request: DeliveryRequest) -> Result<Delivered, Failure> {
    let config = parse_config::<D>(&request.config)
        .map_err(|e| Failure::permanent(format!("invalid config: {}: {}", e.field, e.message)))?;
    D::deliver(config, request.credential, request.events)
}

fn parse_config<D: Destination>(config: &str) -> Result<D::Config, FieldError> {
    serde_json::from_str(config).map_err(|e| FieldError {
        field: "config".to_owned(),
        message: e.to_string(),
    })
}
