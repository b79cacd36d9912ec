//! # Writing a Pushrail destination plugin
//!
//! A destination plugin is a WebAssembly component (`wasm32-wasip2`) that delivers batches of
//! events somewhere: an HTTP endpoint, a queue, a bucket. The host does everything else: it stores
//! the destination's config, decrypts the sub-tenant's credential for the one call, batches,
//! retries, logs every attempt and enforces the egress policy on every connection.
//!
//! A plugin implements [`Destination`] and exports it with [`export_destination!`]:
//!
//! ```ignore
//! use pushrail_plugin_sdk::prelude::*;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Config { url: String }
//!
//! struct Echo;
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
//!     fn deliver(config: Config, _credential: Option<Credential>, events: Vec<Event>) -> DeliveryResult {
//!         let mut last = Delivered::default();
//!         for event in events {
//!             let response = http::Request::post(&config.url)?.json_body(event.payload).send()?;
//!             last = response.into_result()?;
//!         }
//!         Ok(last)
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

pub mod credential;
pub mod glue;
mod outcome;
mod type_info;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "destination",
        generate_all,
        pub_export_macro: true,
        export_macro_name: "__export_destination_world",
        default_bindings_module: "pushrail_plugin_sdk::bindings",
    });
}

pub use outcome::{DeliveryResult, ResultExt};
pub use type_info::TypeInfo;

pub use bindings::pushrail::destination::types::{
    Credential, Delivered, Event, Failure, FailureKind, FieldError,
};

#[doc(hidden)]
pub use glue as __glue;

/// What a plugin author implements.
pub trait Destination {
    /// The destination's config, deserialized from the JSON the customer entered. It has
    /// already passed the JSON Schema from [`TypeInfo::config_schema`].
    type Config: serde::de::DeserializeOwned;

    /// The type id, display strings, and schemas.
    fn info() -> TypeInfo;

    /// Checks that the schema cannot express (a URL's scheme, a template's syntax).
    fn validate(_config: &Self::Config) -> Vec<FieldError> {
        Vec::new()
    }

    /// Delivers one batch; the answer covers the whole batch.
    fn deliver(
        config: Self::Config,
        credential: Option<Credential>,
        events: Vec<Event>,
    ) -> DeliveryResult;
}

/// Everything a plugin usually needs.
pub mod prelude {
    pub use crate::{
        export_destination, http, log, net, Credential, Delivered, DeliveryResult, Destination,
        Event, Failure, FailureKind, FieldError, ResultExt, TypeInfo,
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

            pub struct Export;

            impl $crate::bindings::exports::pushrail::destination::plugin::Guest for Export {
                fn describe() -> $crate::bindings::pushrail::destination::types::DestinationType {
                    $crate::__glue::describe::<$plugin>()
                }

                fn validate(config: ::std::string::String) -> ::std::vec::Vec<$crate::FieldError> {
                    $crate::__glue::validate::<$plugin>(&config)
                }

                fn deliver(
                    request: $crate::bindings::pushrail::destination::types::DeliveryRequest,
                ) -> ::std::result::Result<$crate::Delivered, $crate::Failure> {
                    $crate::__glue::deliver::<$plugin>(request)
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
            let _ = $crate::__glue::deliver::<$plugin>;
        };
    };
}
