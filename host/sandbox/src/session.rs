//! One instance of a plugin and the session it holds for one destination, across WIT versions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, StoreLimitsBuilder, UpdateDeadline};

use crate::state::InvocationState;
use crate::types::{Credential, Event, EventResult, Failure, FieldError, Outcome, RawDescription};
use crate::warm::SessionKey;
use crate::{bounded, v0_1, v0_2, Inner, InvokeError, Plugin};

/// How long a session's destructor may take to say goodbye to its peers.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Calls one session serves before it is replaced by a fresh one. Bounds what a slow leak (in a
/// plugin's memory, or in its resource table) can pile up in a long-lived instance; at one
/// batch a second it still reopens only every quarter of an hour.
const MAX_CALLS_PER_SESSION: u32 = 1000;

/// What a session is opened with: the destination's config (JSON text) and its decrypted
/// credential, which lives on only inside that destination's instance.
pub struct SessionSpec {
    pub config: String,
    pub credential: Option<Credential>,
}

/// A component pre-linked for one WIT version.
pub(crate) enum Pre {
    V0_1(v0_1::Pre),
    V0_2(v0_2::Pre),
}

impl Pre {
    /// Picks the newest version whose exports the component has.
    pub fn new(pre: wasmtime::component::InstancePre<InvocationState>) -> wasmtime::Result<Self> {
        match v0_2::pre(pre.clone()) {
            Ok(pre) => Ok(Self::V0_2(pre)),
            Err(newest) => v0_1::pre(pre).map(Self::V0_1).map_err(|_| newest),
        }
    }

    pub fn version(&self) -> &'static str {
        match self {
            Self::V0_1(_) => v0_1::VERSION,
            Self::V0_2(_) => v0_2::VERSION,
        }
    }
}

enum Guest {
    V0_1(v0_1::Instance),
    V0_2(v0_2::Instance),
}

/// A live instance: its own store (memory, resources, connections) and the component in it.
pub(crate) struct Instance {
    store: Store<InvocationState>,
    guest: Guest,
}

impl Instance {
    pub async fn new(inner: &Inner, pre: &Pre, label: &str) -> wasmtime::Result<Self> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(inner.limits.memory_bytes)
            .table_elements(100_000)
            .instances(32)
            .tables(32)
            .memories(4)
            .trap_on_grow_failure(false)
            .build();
        let mut store = Store::new(
            &inner.engine,
            InvocationState::new(&inner.egress, limits, label.to_owned()),
        );
        store.limiter(|state| &mut state.limits);
        // Every tick, a guest running wasm hands its thread back to the executor; past the
        // call's deadline it is stopped instead.
        store.epoch_deadline_callback(|context| {
            if Instant::now() >= context.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
            .data_mut()
            .start_call(Instant::now() + inner.limits.timeout);
        store.set_epoch_deadline(1);
        let guest = match pre {
            Pre::V0_1(pre) => Guest::V0_1(pre.instantiate_async(&mut store).await?),
            Pre::V0_2(pre) => Guest::V0_2(pre.instantiate_async(&mut store).await?),
        };
        Ok(Self { store, guest })
    }

    /// Like [`Instance::new`], but when every pooled slot is taken, the least recently used warm
    /// session is closed to make room, once.
    pub async fn with_room(inner: &Inner, pre: &Pre, label: &str) -> Result<Self, InvokeError> {
        match Self::new(inner, pre, label).await {
            Ok(instance) => Ok(instance),
            Err(first) => match inner.warm.pop_least_recent() {
                Some(victim) => {
                    victim.close().await;
                    Self::new(inner, pre, label)
                        .await
                        .map_err(|e| InvokeError::Instantiate(format!("{e:#}")))
                }
                None => Err(InvokeError::Instantiate(format!("{first:#}"))),
            },
        }
    }

    fn start_call(&mut self, timeout: Duration) {
        self.store.data_mut().start_call(Instant::now() + timeout);
        self.store.set_epoch_deadline(1);
    }

    pub async fn describe(&mut self, timeout: Duration) -> anyhow::Result<RawDescription> {
        self.start_call(timeout);
        let store = &mut self.store;
        let answer = match &self.guest {
            Guest::V0_1(i) => bounded(timeout, v0_1::describe(store, i)).await,
            Guest::V0_2(i) => bounded(timeout, v0_2::describe(store, i)).await,
        };
        Ok(answer?)
    }

    pub async fn validate(
        &mut self,
        config: &str,
        timeout: Duration,
    ) -> Result<Vec<FieldError>, InvokeError> {
        self.start_call(timeout);
        let store = &mut self.store;
        match &self.guest {
            Guest::V0_1(i) => bounded(timeout, v0_1::validate(store, i, config)).await,
            Guest::V0_2(i) => bounded(timeout, v0_2::validate(store, i, config)).await,
        }
    }
}

enum GuestSession {
    V0_1(v0_1::Session),
    V0_2(v0_2::Session),
}

/// A destination's warm session: the instance and the session the plugin opened in it.
pub(crate) struct Session {
    instance: Instance,
    session: GuestSession,
    calls: u32,
}

impl Session {
    async fn open(
        inner: &Inner,
        plugin: &Plugin,
        label: &str,
        spec: SessionSpec,
    ) -> Result<Session, Failure> {
        let timeout = inner.limits.timeout;
        let mut instance = Instance::with_room(inner, &plugin.pre, label)
            .await
            .map_err(Failure::from)?;
        instance.start_call(timeout);
        let session = match &instance.guest {
            Guest::V0_1(_) => GuestSession::V0_1(v0_1::Session {
                config: spec.config,
                credential: spec.credential,
            }),
            Guest::V0_2(i) => {
                let opened = bounded(
                    timeout,
                    v0_2::open(
                        &mut instance.store,
                        i,
                        &spec.config,
                        spec.credential.as_ref(),
                    ),
                )
                .await?;
                GuestSession::V0_2(opened?)
            }
        };
        Ok(Session {
            instance,
            session,
            calls: 0,
        })
    }

    /// Whether the session may serve another batch. A 0.1.0 plugin was promised a fresh
    /// instance per call (and its SDK leaked a resource per request), so it gets one.
    fn reusable(&self) -> bool {
        matches!(self.session, GuestSession::V0_2(_)) && self.calls < MAX_CALLS_PER_SESSION
    }

    async fn deliver(
        &mut self,
        events: &[Event],
        timeout: Duration,
    ) -> Result<Vec<Outcome>, InvokeError> {
        self.calls += 1;
        self.instance.start_call(timeout);
        let store = &mut self.instance.store;
        match (&self.instance.guest, &self.session) {
            (Guest::V0_1(i), GuestSession::V0_1(s)) => {
                let result: EventResult =
                    bounded(timeout, v0_1::deliver(store, i, s, events)).await?;
                Ok(events
                    .iter()
                    .map(|e| Outcome {
                        event_id: e.id.clone(),
                        result: result.clone(),
                    })
                    .collect())
            }
            (Guest::V0_2(i), GuestSession::V0_2(s)) => {
                bounded(timeout, v0_2::deliver(store, i, s, events)).await
            }
            _ => unreachable!("a session is opened by its own instance's adapter"),
        }
    }

    /// Lets the plugin close its connections, then frees the instance.
    pub async fn close(mut self) {
        if let (Guest::V0_2(_), GuestSession::V0_2(session)) = (&self.instance.guest, self.session)
        {
            self.instance.start_call(CLOSE_TIMEOUT);
            let _ = bounded(
                CLOSE_TIMEOUT,
                v0_2::close(&mut self.instance.store, session),
            )
            .await;
        }
    }
}

/// One batch of one destination, in its warm session.
pub(crate) async fn deliver(
    inner: &Arc<Inner>,
    plugin: &Plugin,
    key: SessionKey,
    spec: impl FnOnce() -> Result<SessionSpec, Failure>,
    events: Vec<Event>,
) -> Result<Vec<Outcome>, Failure> {
    let mut session = match inner.warm.take(inner, &key) {
        Some(session) => session,
        None => {
            let spec = spec()?;
            let label = format!("{}:{}", plugin.info.id, key.destination);
            Session::open(inner, plugin, &label, spec).await?
        }
    };
    match session.deliver(&events, inner.limits.timeout).await {
        Ok(outcomes) => {
            if session.reusable() {
                inner.warm.put(inner, key, session);
            } else {
                inner.runtime.spawn(session.close());
            }
            Ok(outcomes)
        }
        // A trapped or interrupted instance is not used again; its store goes with it.
        Err(error) => Err(error.into()),
    }
}
