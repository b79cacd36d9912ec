//! The adapter for plugins built against `pushrail:destination@0.1.0`: one `deliver` per batch,
//! one answer for the whole batch, no session. The host still keeps the instance warm per
//! destination; the batch's one answer becomes every event's outcome.

use wasmtime::component::{HasSelf, Linker};
use wasmtime::Store;

use crate::state::InvocationState;
use crate::types::{
    Credential, Delivered, Event, EventResult, Failure, FailureKind, FieldError, RawDescription,
};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.1.0",
        world: "destination",
        imports: { default: async },
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:random": wasmtime_wasi::p2::bindings::random,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
        require_store_data_send: true,
    });
}

use bindings::pushrail::destination::{log, net, types};

pub const VERSION: &str = "0.1.0";

pub type Pre = bindings::DestinationPre<InvocationState>;
pub type Instance = bindings::Destination;

pub fn add_to_linker(linker: &mut Linker<InvocationState>) -> wasmtime::Result<()> {
    log::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    net::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}

pub fn pre(pre: wasmtime::component::InstancePre<InvocationState>) -> wasmtime::Result<Pre> {
    bindings::DestinationPre::new(pre)
}

pub async fn describe(
    store: &mut Store<InvocationState>,
    instance: &Instance,
) -> wasmtime::Result<RawDescription> {
    let d = instance
        .pushrail_destination_plugin()
        .call_describe(store)
        .await?;
    Ok(RawDescription {
        id: d.id,
        name: d.name,
        description: d.description,
        config_schema: d.config_schema,
        credential_schema: d.credential_schema,
        credential_kinds: d.credential_kinds,
        credential_required: d.credential_required,
        max_batch_size: d.max_batch_size,
    })
}

pub async fn validate(
    store: &mut Store<InvocationState>,
    instance: &Instance,
    config: &str,
) -> wasmtime::Result<Vec<FieldError>> {
    let errors = instance
        .pushrail_destination_plugin()
        .call_validate(store, config)
        .await?;
    Ok(errors
        .into_iter()
        .map(|e| FieldError {
            field: e.field,
            message: e.message,
        })
        .collect())
}

/// 0.1 has no session: the adapter keeps what `deliver` needs beside the instance.
pub struct Session {
    pub config: String,
    pub credential: Option<Credential>,
}

pub async fn deliver(
    store: &mut Store<InvocationState>,
    instance: &Instance,
    session: &Session,
    events: &[Event],
) -> wasmtime::Result<EventResult> {
    let mut request = types::DeliveryRequest {
        config: session.config.clone(),
        credential: session.credential.as_ref().map(|c| types::Credential {
            kind: c.kind.clone(),
            secret: c.secret.clone(),
        }),
        events: events
            .iter()
            .map(|e| types::Event {
                id: e.id.clone(),
                event_type: e.event_type.clone(),
                occurred_at: e.occurred_at,
                payload: e.payload.clone(),
                attributes: e.attributes.clone(),
            })
            .collect(),
    };
    let answer = instance
        .pushrail_destination_plugin()
        .call_deliver(&mut *store, &request)
        .await;
    if let Some(credential) = request.credential.as_mut() {
        zeroize::Zeroize::zeroize(&mut credential.secret);
    }
    Ok(match answer? {
        Ok(d) => Ok(Delivered {
            status_code: d.status_code,
            response_excerpt: d.response_excerpt,
        }),
        Err(f) => Err(Failure {
            kind: match f.kind {
                types::FailureKind::Retryable => FailureKind::Retryable,
                types::FailureKind::Permanent => FailureKind::Permanent,
            },
            message: f.message,
            status_code: f.status_code,
            retry_after_ms: f.retry_after_ms,
            response_excerpt: f.response_excerpt,
        }),
    })
}

crate::state::host_imports!();
