//! # Writing a Pushrail destination plugin
//!
//! A destination plugin is a WebAssembly component (`wasm32-wasip2`) that delivers batches of
//! events somewhere: an HTTP endpoint, a queue, a bucket. The host does everything else: it stores
//! the destination's config, decrypts the sub-tenant's credential for that destination's session
//! only, batches, retries, logs every attempt and enforces the egress policy on every connection.
//!
//! A plugin implements [`Destination`] and exports it with [`export_destination!`]. The host
//! opens one session per destination (`open`) and keeps it warm between batches, so a plugin can
//! keep its connection ([`Warm`]) and tokens; `deliver` answers for each event on its own:
//!
//! ```ignore
//! use pushrail_plugin_sdk::prelude::*;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Config { url: String }
//!
//! struct Echo { config: Config }
//!
//! impl Destination for Echo {
//!     type Config = Config;
//!
//!     fn info() -> TypeInfo {
//!         TypeInfo::new("echo", "Echo", "POSTs each event's payload as is")
//!             .config_schema(serde_json::json!({
//!                 "type": "object",
//!                 "required": ["url"],
//!                 "properties": { "url": { "type": "string", "format": "uri" } },
//!                 "additionalProperties": false
//!             }))
//!     }
//!
//!     fn open(config: Config, _credential: Option<Credential>) -> Result<Self, Failure> {
//!         Ok(Self { config })
//!     }
//!
//!     fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
//!         events
//!             .iter()
//!             .map(|event| http::Request::post(&self.config.url)?.json_body(event.payload.clone()).send()?.into_result())
//!             .collect()
//!     }
//! }
//!
//! export_destination!(Echo);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and drop the `.wasm` into the
//! host's plugins directory.

pub mod http;
pub mod log;
pub mod net;

pub mod aws;
pub mod azure;
pub mod batch;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
#[cfg(feature = "gcp")]
pub mod gcp;
pub mod object;
pub mod record;
pub mod template;

pub mod credential;
pub mod glue;
mod outcome;
pub mod settings;
mod type_info;
mod warm;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/v0.2.0",
        world: "destination",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_destination_world",
        default_bindings_module: "pushrail_plugin_sdk::bindings",
    });
}

pub use outcome::{all, DeliveryResult, ResultExt};
pub use type_info::TypeInfo;
pub use warm::Warm;

pub use bindings::pushrail::destination::types::{
    Credential, Delivered, Event, Failure, FailureKind, FieldError,
};

#[doc(hidden)]
pub use glue as __glue;

/// What a plugin author implements: the type's description, and a session per destination.
pub trait Destination: Sized + 'static {
    /// The destination's config, deserialized from the JSON the customer entered. It has
    /// already passed the JSON Schema from [`TypeInfo::config_schema`].
    type Config: serde::de::DeserializeOwned;

    /// The type id, display strings, and schemas.
    fn info() -> TypeInfo;

    /// Checks what the schema cannot express (a URL's scheme, a template's syntax).
    fn validate(_config: &Self::Config) -> Vec<FieldError> {
        Vec::new()
    }

    /// Opens the session of one destination. Keep it cheap (connect on the first `deliver`);
    /// a failure here answers every event of the batch that needed the session.
    fn open(config: Self::Config, credential: Option<Credential>) -> Result<Self, Failure>;

    /// Delivers one batch: one result per event, in the order given. [`all`] gives every event
    /// the same result, for a batch that succeeds or fails as one.
    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult>;
}

/// Everything a plugin usually needs.
pub mod prelude {
    pub use crate::{
        all, export_destination, http, log, net, Credential, Delivered, DeliveryResult,
        Destination, Event, Failure, FailureKind, FieldError, ResultExt, TypeInfo, Warm,
    };
}

/// Exports a [`Destination`] implementation as the component's `plugin` interface.
#[macro_export]
macro_rules! export_destination {
    ($plugin:ty) => {
        // Exports only exist in the component; native builds (unit tests of a plugin's logic)
        // link without them.
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __pushrail_export {
            use super::*;

            struct Export;

            impl $crate::bindings::exports::pushrail::destination::plugin::Guest for Export {
                type Session = $crate::__glue::SessionOf<$plugin>;

                fn describe() -> $crate::bindings::pushrail::destination::types::DestinationType {
                    $crate::__glue::describe::<$plugin>()
                }

                fn validate(config: ::std::string::String) -> ::std::vec::Vec<$crate::FieldError> {
                    $crate::__glue::validate::<$plugin>(&config)
                }
            }

            $crate::bindings::__export_destination_world!(Export with_types_in $crate::bindings);
        }

        // Natively nothing is exported; naming the entry points here keeps the plugin's code
        // reachable, so its unit tests and clippy see no dead code.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = $crate::__glue::describe::<$plugin>;
            let _ = $crate::__glue::validate::<$plugin>;
            let _ = $crate::__glue::open::<$plugin>;
            let _ = <$plugin as $crate::Destination>::deliver;
        };
    };
}
