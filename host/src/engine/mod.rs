//! The delivery engine: a dispatcher that claims due work from the durable queue, a bounded pool
//! of plugin calls, and a completer that writes attempts back in grouped transactions.
//!
//! Work is claimed with a lease; a worker that dies leaves rows whose lease lapses and any worker
//! claims them again, so delivery is at-least-once and never lost.

mod execute;
pub mod fanout;
mod retry;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify, Semaphore};

use crate::aws_roles::AwsRoles;
use crate::config::RetrySchedule;
use crate::sandbox::Sandbox;
use crate::store::{ClaimShare, ClaimedDelivery, Completion, Store};
use crate::vault::Vault;

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub retry: RetrySchedule,
    pub batch_size: usize,
    pub linger: Duration,
    pub concurrency: usize,
    /// Batches of one destination in flight at once.
    pub destination_concurrency: usize,
    pub lease: Duration,
    pub poll_interval: Duration,
    /// A destination whose every batch has failed for this long is disabled (paused).
    pub auto_disable_after: Duration,
    /// Batches in a row that delivered nothing before the destination's circuit opens (0: never).
    pub circuit_after: u32,
}

/// Most rows one claim takes; bounds the transaction and the memory held per round.
const MAX_CLAIM: usize = 1000;

/// A batch held back because its destination has its share of calls in flight becomes
/// claimable again after this long.
const HOLD_BACK: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    plugins: Arc<Sandbox>,
    vault: Arc<Vault>,
    aws_roles: Arc<AwsRoles>,
    settings: EngineSettings,
    owner: String,
    wake: Notify,
    permits: Arc<Semaphore>,
    /// Batches in flight per destination.
    in_flight: std::sync::Mutex<HashMap<String, usize>>,
    /// Set on SIGTERM/SIGINT: the dispatcher claims nothing more.
    draining: std::sync::atomic::AtomicBool,
    /// Calls finished whose attempts the completer has not written yet.
    unrecorded: std::sync::atomic::AtomicUsize,
}

impl Engine {
    pub fn new(
        store: Store,
        plugins: Arc<Sandbox>,
        vault: Arc<Vault>,
        aws_roles: Arc<AwsRoles>,
        settings: EngineSettings,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        let owner = crate::ids::new("wrk");
        Self {
            inner: Arc::new(Inner {
                store,
                plugins,
                vault,
                aws_roles,
                settings,
                owner,
                wake: Notify::new(),
                permits,
                in_flight: Default::default(),
                draining: Default::default(),
                unrecorded: Default::default(),
            }),
        }
    }

    /// Starts the dispatcher and the completer on the current runtime.
    pub fn start(&self) {
        let (tx, rx) = mpsc::channel::<Vec<Completion>>(1024);
        tokio::spawn(complete_loop(self.inner.clone(), rx));
        tokio::spawn(dispatch_loop(self.inner.clone(), tx));
    }

    /// Stops claiming work and waits, up to `grace`, for the calls in flight to finish and their
    /// attempts to be recorded. True when everything finished in time; what did not is left to
    /// its lease (another host takes it over when the lease lapses).
    pub async fn drain(&self, grace: Duration) -> bool {
        use std::sync::atomic::Ordering;
        self.inner.draining.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let idle = self.inner.permits.available_permits() == self.inner.settings.concurrency
                && self.inner.unrecorded.load(Ordering::SeqCst) == 0;
            if idle {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// New work is queued: look now instead of at the next poll.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// When a new or replayed delivery is first due: now plus the schedule's first delay.
    pub fn first_attempt_at(&self) -> i64 {
        let first = self
            .inner
            .settings
            .retry
            .0
            .first()
            .copied()
            .unwrap_or_default();
        crate::clock::now_ms() + first.as_millis() as i64
    }

    pub fn lease_ms(&self) -> i64 {
        self.inner.settings.lease.as_millis() as i64
    }

    /// Delivers already-claimed deliveries right away and records the attempts before returning.
    pub async fn deliver_now(
        &self,
        claimed: Vec<ClaimedDelivery>,
    ) -> anyhow::Result<Vec<Completion>> {
        let completions = execute::execute(&self.inner, claimed).await;
        self.inner.store.complete(&completions).await?;
        Ok(completions)
    }
}

async fn dispatch_loop(inner: Arc<Inner>, completions: mpsc::Sender<Vec<Completion>>) {
    let settings = &inner.settings;
    loop {
        tokio::select! {
            () = inner.wake.notified() => {}
            () = tokio::time::sleep(settings.poll_interval) => {}
        }
        if !settings.linger.is_zero() {
            tokio::time::sleep(settings.linger).await;
        }
        if inner.draining.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        loop {
            let free = inner.permits.available_permits();
            if free == 0 {
                break; // a finishing call wakes us
            }
            // No more rows than free permits: every claimed row then starts within moments, long
            // before its lease could lapse and let another worker take it too. Destinations
            // running all the batches they may are left out, and the others share the claim a
            // batch at a time, so one destination's backlog cannot hold back everyone else's.
            let mut busy = busy_destinations(&inner);
            // Open circuits: their work waits, but for one probe each once it is due.
            let mut probing = Vec::new();
            match inner.store.circuits().await {
                Ok(circuits) => {
                    let now = crate::clock::now_ms();
                    for circuit in circuits {
                        if circuit.until <= now {
                            probing.push(circuit.destination_id);
                        } else {
                            busy.push(circuit.destination_id);
                        }
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "reading open circuits failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
            let share = ClaimShare {
                rows: free.clamp(1, MAX_CLAIM) as i64,
                batch: settings.batch_size.max(1) as i64,
                batches: settings.destination_concurrency.max(1) as i64,
                busy: &busy,
                probing: &probing,
            };
            let limit = share.rows as usize;
            let claimed = match inner
                .store
                .claim_due(&inner.owner, settings.lease.as_millis() as i64, &share)
                .await
            {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::error!(%error, "claiming due deliveries failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            };
            let claimed_count = claimed.len();
            let mut held_back = Vec::new();
            for batch in batches(&inner, claimed) {
                let Some(slot) = DestinationSlot::take(&inner, &batch[0].destination_id) else {
                    held_back.extend(batch);
                    continue;
                };
                let permit = inner
                    .permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                let inner = inner.clone();
                let completions = completions.clone();
                tokio::spawn(async move {
                    let done = execute::execute(&inner, batch).await;
                    inner
                        .unrecorded
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    // The completer outlives every call; a send only fails at shutdown, when the
                    // lapsing lease hands the work to the next start.
                    let _ = completions.send(done).await;
                    drop(slot);
                    drop(permit);
                    inner.wake.notify_one();
                });
            }
            if !held_back.is_empty() {
                // Its destination already has its share of calls running: hand the rows back
                // for a moment instead of letting them wait on a slot while holding a lease.
                let until = crate::clock::now_ms() + HOLD_BACK.as_millis() as i64;
                if let Err(error) = inner.store.release(&held_back, until).await {
                    tracing::error!(%error, rows = held_back.len(), "handing back held rows failed; their lease will lapse");
                }
                break;
            }
            if claimed_count < limit {
                break;
            }
        }
    }
}

/// Destinations whose every batch slot is taken.
fn busy_destinations(inner: &Inner) -> Vec<String> {
    let in_flight = inner.in_flight.lock().expect("in-flight lock");
    in_flight
        .iter()
        .filter(|(_, count)| **count >= inner.settings.destination_concurrency)
        .map(|(destination, _)| destination.clone())
        .collect()
}

/// One of a destination's in-flight batch slots, given back on drop.
struct DestinationSlot {
    inner: Arc<Inner>,
    destination: String,
}

impl DestinationSlot {
    fn take(inner: &Arc<Inner>, destination: &str) -> Option<Self> {
        let mut in_flight = inner.in_flight.lock().expect("in-flight lock");
        let count = in_flight.entry(destination.to_owned()).or_default();
        if *count >= inner.settings.destination_concurrency {
            return None;
        }
        *count += 1;
        Some(Self {
            inner: inner.clone(),
            destination: destination.to_owned(),
        })
    }
}

impl Drop for DestinationSlot {
    fn drop(&mut self) {
        let mut in_flight = self.inner.in_flight.lock().expect("in-flight lock");
        if let Some(count) = in_flight.get_mut(&self.destination) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(&self.destination);
            }
        }
    }
}

/// Groups claimed rows by destination and cuts them to the batch size the type accepts.
fn batches(inner: &Inner, claimed: Vec<ClaimedDelivery>) -> Vec<Vec<ClaimedDelivery>> {
    let mut by_destination: BTreeMap<String, Vec<ClaimedDelivery>> = BTreeMap::new();
    for delivery in claimed {
        by_destination
            .entry(delivery.destination_id.clone())
            .or_default()
            .push(delivery);
    }
    let mut out = Vec::new();
    for (_, mut rows) in by_destination {
        let type_max = inner
            .plugins
            .get(&rows[0].destination_type)
            .map(|p| p.info.max_batch_size as usize)
            .unwrap_or(1);
        let size = inner.settings.batch_size.min(type_max).max(1);
        while !rows.is_empty() {
            let rest = rows.split_off(rows.len().min(size));
            out.push(std::mem::replace(&mut rows, rest));
        }
    }
    out
}

async fn complete_loop(inner: Arc<Inner>, mut rx: mpsc::Receiver<Vec<Completion>>) {
    while let Some(mut pending) = rx.recv().await {
        let mut calls = 1;
        while pending.len() < MAX_CLAIM {
            match rx.try_recv() {
                Ok(more) => {
                    pending.extend(more);
                    calls += 1;
                }
                Err(_) => break,
            }
        }
        // A database hiccup delays the log, it does not lose it: the batch is retried. Should it
        // keep failing, rows are recorded one by one so a single bad row cannot hold up the rest;
        // a row that still fails is left to its lease, and the delivery is attempted again.
        let mut tries = 0;
        while let Err(error) = inner.store.complete(&pending).await {
            tries += 1;
            tracing::error!(%error, rows = pending.len(), tries, "recording attempts failed");
            if tries >= 3 {
                for one in &pending {
                    if let Err(error) = inner.store.complete(std::slice::from_ref(one)).await {
                        tracing::error!(%error, delivery = %one.delivery_id, "recording an attempt failed; its lease will lapse");
                    }
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        inner
            .unrecorded
            .fetch_sub(calls, std::sync::atomic::Ordering::SeqCst);
    }
}
