//! The adapter for plugins built against `pushrail:destination@0.2.0`: a `session` resource per
//! destination, answers per event.

use wasmtime::component::{HasSelf, Linker, ResourceAny};
use wasmtime::Store;

use crate::state::InvocationState;
use crate::types::{
    Credential, Delivered, Event, Failure, FailureKind, FieldError, Outcome, RawDescription,
};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.2.0",
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

use bindings::pushrail::destination::{http_batch, log, net, types};

pub const VERSION: &str = "0.2.0";

pub type Pre = bindings::DestinationPre<InvocationState>;
pub type Instance = bindings::Destination;

pub fn add_to_linker(linker: &mut Linker<InvocationState>) -> wasmtime::Result<()> {
    log::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    net::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    http_batch::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
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

/// The guest's `session` resource.
pub struct Session(ResourceAny);

pub async fn open(
    store: &mut Store<InvocationState>,
    instance: &Instance,
    config: &str,
    credential: Option<&Credential>,
) -> wasmtime::Result<Result<Session, Failure>> {
    let mut credential = credential.map(|c| types::Credential {
        kind: c.kind.clone(),
        secret: c.secret.clone(),
    });
    let answer = instance
        .pushrail_destination_plugin()
        .session()
        .call_open(&mut *store, config, credential.as_ref())
        .await;
    if let Some(credential) = credential.as_mut() {
        zeroize::Zeroize::zeroize(&mut credential.secret);
    }
    Ok(answer?.map(Session).map_err(failure))
}

pub async fn deliver(
    store: &mut Store<InvocationState>,
    instance: &Instance,
    session: &Session,
    events: &[Event],
) -> wasmtime::Result<Vec<Outcome>> {
    let events: Vec<types::Event> = events
        .iter()
        .map(|e| types::Event {
            id: e.id.clone(),
            event_type: e.event_type.clone(),
            occurred_at: e.occurred_at,
            payload: e.payload.clone(),
            attributes: e.attributes.clone(),
        })
        .collect();
    let outcomes = instance
        .pushrail_destination_plugin()
        .session()
        .call_deliver(store, session.0, &events)
        .await?;
    Ok(outcomes
        .into_iter()
        .map(|o| Outcome {
            event_id: o.event_id,
            result: o
                .answer
                .map(|d| Delivered {
                    status_code: d.status_code,
                    response_excerpt: d.response_excerpt,
                })
                .map_err(failure),
        })
        .collect())
}

/// Runs the guest's destructor, so the plugin can say goodbye to its peers.
pub async fn close(store: &mut Store<InvocationState>, session: Session) -> wasmtime::Result<()> {
    session.0.resource_drop_async(store).await
}

fn failure(f: types::Failure) -> Failure {
    Failure {
        kind: match f.kind {
            types::FailureKind::Retryable => FailureKind::Retryable,
            types::FailureKind::Permanent => FailureKind::Permanent,
        },
        message: f.message,
        status_code: f.status_code,
        retry_after_ms: f.retry_after_ms,
        response_excerpt: f.response_excerpt,
    }
}

crate::state::host_imports!();

impl http_batch::Host for InvocationState {
    async fn send(
        &mut self,
        requests: Vec<http_batch::Request>,
        max_in_flight: u32,
        max_body_bytes: u32,
    ) -> Vec<Result<http_batch::Response, http_batch::Error>> {
        use crate::http::{BatchError, BatchRequest};
        let requests = requests
            .into_iter()
            .map(|r| BatchRequest {
                method: r.method,
                url: r.url,
                headers: r.headers,
                body: r.body,
                timeout: std::time::Duration::from_millis(r.timeout_ms.into()),
            })
            .collect();
        self.http_batch(requests, max_in_flight as usize, max_body_bytes as usize)
            .await
            .into_iter()
            .map(|answer| {
                answer
                    .map(|r| http_batch::Response {
                        status: r.status,
                        headers: r.headers,
                        body: r.body,
                    })
                    .map_err(|e| match e {
                        BatchError::Denied => http_batch::Error::Denied,
                        BatchError::Unresolved(m) => http_batch::Error::Unresolved(m),
                        BatchError::ConnectionRefused => http_batch::Error::ConnectionRefused,
                        BatchError::ConnectTimeout => http_batch::Error::ConnectTimeout,
                        BatchError::ResponseTimeout => http_batch::Error::ResponseTimeout,
                        BatchError::Tls(m) => http_batch::Error::Tls(m),
                        BatchError::InvalidRequest(m) => http_batch::Error::InvalidRequest(m),
                        BatchError::BodyTooLarge => http_batch::Error::BodyTooLarge,
                        BatchError::LimitReached => http_batch::Error::LimitReached,
                        BatchError::Other(m) => http_batch::Error::Other(m),
                    })
            })
            .collect()
    }
}
