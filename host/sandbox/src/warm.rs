//! The warm sessions kept between batches, per destination.
//!
//! Rules (each tested in `host/tests/sessions.rs`):
//! - a session is keyed by its destination and a fingerprint of what it was opened with (config
//!   and sealed credential), so it is never handed another destination's batch, and a changed
//!   config or rotated credential opens a new one on the very next batch while the old ones are
//!   closed;
//! - a session is taken out while it delivers (one batch at a time per session; a destination
//!   with several batches in flight has several sessions) and put back after a clean call; after
//!   a trap or a timeout it is dropped instead;
//! - at most `capacity` idle sessions are kept, the least recently used closed first, and one
//!   idle for `idle_timeout` is closed by a sweep.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::session::Session;
use crate::Inner;

/// Which destination a session serves, and a fingerprint of what it was opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    pub destination: String,
    pub fingerprint: u64,
}

impl SessionKey {
    /// A key from the destination id and everything its session is opened with (config text,
    /// credential id, sealed credential bytes): any change gives another fingerprint.
    pub fn new(destination: &str, parts: &[&[u8]]) -> Self {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for part in parts {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        let digest = hash.finalize();
        Self {
            destination: destination.to_owned(),
            fingerprint: u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")),
        }
    }
}

struct Idle {
    fingerprint: u64,
    session: Session,
    last_used: Instant,
}

#[derive(Default)]
struct State {
    idle: HashMap<String, Vec<Idle>>,
    /// The fingerprint each destination was last asked for: a session of an older one that
    /// comes back from a call is closed instead of kept.
    current: HashMap<String, u64>,
    count: usize,
}

pub(crate) struct WarmSessions {
    state: Mutex<State>,
    capacity: usize,
    idle_timeout: Duration,
}

impl WarmSessions {
    pub fn new(capacity: usize, idle_timeout: Duration) -> Self {
        Self {
            state: Mutex::new(State::default()),
            capacity,
            idle_timeout,
        }
    }

    pub fn len(&self) -> usize {
        self.lock().count
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("warm sessions lock")
    }

    /// A warm session for `key`, if one is idle. Sessions of the destination opened with
    /// anything else are closed.
    pub fn take(&self, inner: &Arc<Inner>, key: &SessionKey) -> Option<Session> {
        let mut stale = Vec::new();
        let found = {
            let mut state = self.lock();
            state
                .current
                .insert(key.destination.clone(), key.fingerprint);
            let mut found = None;
            if let Some(list) = state.idle.get_mut(&key.destination) {
                let (keep, old): (Vec<Idle>, Vec<Idle>) = std::mem::take(list)
                    .into_iter()
                    .partition(|idle| idle.fingerprint == key.fingerprint);
                *list = keep;
                stale = old;
                found = list.pop().map(|idle| idle.session);
            }
            let removed = stale.len() + usize::from(found.is_some());
            state.count -= removed;
            if state.idle.get(&key.destination).is_some_and(Vec::is_empty) {
                state.idle.remove(&key.destination);
            }
            found
        };
        close_all(inner, stale.into_iter().map(|idle| idle.session));
        found
    }

    /// Keeps a session that finished a call cleanly, unless its destination has moved on to
    /// another fingerprint; closes the least recently used beyond the capacity.
    pub fn put(&self, inner: &Arc<Inner>, key: SessionKey, session: Session) {
        let mut closing = Vec::new();
        {
            let mut state = self.lock();
            let current = state.current.get(&key.destination).copied();
            if current != Some(key.fingerprint) || self.capacity == 0 {
                closing.push(session);
            } else {
                state.idle.entry(key.destination).or_default().push(Idle {
                    fingerprint: key.fingerprint,
                    session,
                    last_used: Instant::now(),
                });
                state.count += 1;
                while state.count > self.capacity {
                    match pop_least_recent(&mut state) {
                        Some(session) => closing.push(session),
                        None => break,
                    }
                }
            }
        }
        close_all(inner, closing);
    }

    /// Closes every idle session of a destination and forgets its fingerprint.
    pub fn invalidate(&self, inner: &Arc<Inner>, destination: &str) {
        let closing: Vec<Session> = {
            let mut state = self.lock();
            state.current.remove(destination);
            let list = state.idle.remove(destination).unwrap_or_default();
            state.count -= list.len();
            list.into_iter().map(|idle| idle.session).collect()
        };
        close_all(inner, closing);
    }

    /// Takes the least recently used idle session out, for the caller to close.
    pub fn pop_least_recent(&self) -> Option<Session> {
        pop_least_recent(&mut self.lock())
    }

    fn expired(&self) -> Vec<Session> {
        let mut state = self.lock();
        let cutoff = Instant::now() - self.idle_timeout;
        let mut out = Vec::new();
        for list in state.idle.values_mut() {
            let (old, keep): (Vec<Idle>, Vec<Idle>) = std::mem::take(list)
                .into_iter()
                .partition(|idle| idle.last_used < cutoff);
            *list = keep;
            out.extend(old.into_iter().map(|idle| idle.session));
        }
        state.idle.retain(|_, list| !list.is_empty());
        state.count -= out.len();
        out
    }
}

fn pop_least_recent(state: &mut State) -> Option<Session> {
    let (destination, index) = state
        .idle
        .iter()
        .flat_map(|(d, list)| {
            list.iter()
                .enumerate()
                .map(move |(i, idle)| (d, i, idle.last_used))
        })
        .min_by_key(|(_, _, used)| *used)
        .map(|(d, i, _)| (d.clone(), i))?;
    let list = state.idle.get_mut(&destination)?;
    let idle = list.remove(index);
    if list.is_empty() {
        state.idle.remove(&destination);
    }
    state.count -= 1;
    Some(idle.session)
}

/// Closes sessions in the background: each gets a bounded moment to say goodbye to its peers.
fn close_all(inner: &Arc<Inner>, sessions: impl IntoIterator<Item = Session>) {
    for session in sessions {
        inner.runtime.spawn(session.close());
    }
}

/// Closes sessions idle past the timeout, until the sandbox is gone.
pub(crate) async fn sweep(inner: Weak<Inner>) {
    loop {
        let period = match inner.upgrade() {
            Some(inner) => {
                let expired = inner.warm.expired();
                close_all(&inner, expired);
                (inner.warm.idle_timeout / 4).max(Duration::from_millis(100))
            }
            None => return,
        };
        tokio::time::sleep(period).await;
    }
}
