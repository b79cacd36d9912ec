//! One plugin call for one batch of one destination, and each delivery's own outcome.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{retry, Inner};
use crate::aws_roles::{self, AssumeError, Role};
use crate::clock;
use crate::sandbox::{
    Credential, Event, EventResult, Failure, FailureKind, SessionKey, SessionSpec,
};
use crate::scope::Scope;
use crate::store::{AttemptRow, ClaimedDelivery, Completion, Outcome};
use crate::vault::Sealed;

/// Error texts and peer excerpts kept in the delivery log are cut to this many characters.
const MAX_LOG_TEXT: usize = 1024;

/// Delivers `batch` (all for one destination) and says what became of each delivery.
pub(super) async fn execute(inner: &Inner, batch: Vec<ClaimedDelivery>) -> Vec<Completion> {
    let started_at = clock::now_ms();
    let clock = Instant::now();
    let answers = attempt(inner, &batch).await;
    // Unknown unless the destination was read: then the health update must run to find out.
    let mut was_failing = true;
    let mut circuit_was_open = false;
    let duration_ms = clock.elapsed().as_millis() as i64;
    let mut by_event: HashMap<String, EventResult> = HashMap::new();
    match answers {
        Ok(Sent {
            outcomes,
            failing,
            circuit_open,
        }) => {
            was_failing = failing;
            circuit_was_open = circuit_open;
            for outcome in outcomes {
                let known = batch.iter().any(|d| d.event_id == outcome.event_id);
                if !known {
                    tracing::warn!(
                        destination = %batch[0].destination_id,
                        event = %outcome.event_id,
                        "the plugin answered for an event it was not given; answer ignored"
                    );
                    continue;
                }
                by_event.entry(outcome.event_id).or_insert(outcome.result);
            }
        }
        Err(NotSent::Failed(failure)) => {
            for delivery in &batch {
                by_event.insert(delivery.event_id.clone(), Err(failure.clone()));
            }
        }
        Err(NotSent::Paused) => {
            // Disabled after these were claimed: back to the queue, paused, no attempt made.
            if let Err(error) = inner.store.unclaim(&batch).await {
                tracing::error!(%error, rows = batch.len(), "putting back a disabled destination's rows failed; their lease will lapse");
            }
            return Vec::new();
        }
    }
    // One jitter and one clock reading for the whole call: what failed together is due again
    // together, and is claimed as one batch.
    let later = Later {
        now: clock::now_ms(),
        jitter: retry::Jitter::draw(),
    };
    let completions: Vec<Completion> = batch
        .iter()
        .map(|delivery| {
            let result = by_event.remove(&delivery.event_id).unwrap_or_else(|| {
                Err(Failure::retryable(
                    "the plugin gave no answer for this event (a plugin bug); it will be tried again",
                ))
            });
            completion(inner, delivery, &result, started_at, duration_ms, later)
        })
        .collect();
    let health = record_health(
        inner,
        &batch[0].destination_id,
        &completions,
        was_failing,
        circuit_was_open,
        later,
    )
    .await;
    notify_operator(inner, &batch[0], &completions, health).await;
    completions
}

/// Tells the vendor's operator endpoint (if it has one) what this batch showed about the
/// destination: its circuit opened, it was disabled or it recovered, a delivery ran out of
/// retries, the peer refused the customer's credential (401/403).
async fn notify_operator(
    inner: &Inner,
    first: &ClaimedDelivery,
    completions: &[Completion],
    health: Option<(&'static str, serde_json::Value)>,
) {
    let mut notices: Vec<(&'static str, serde_json::Value)> = health.into_iter().collect();
    for c in completions {
        if c.status == "failed" && c.attempt.outcome == Outcome::RetryableError.as_str() {
            notices.push((
                "delivery.exhausted",
                serde_json::json!({ "delivery_id": c.delivery_id, "last_error": c.attempt.error }),
            ));
        }
    }
    if let Some(refused) = completions.iter().find(|c| {
        c.attempt.outcome == Outcome::PermanentError.as_str()
            && matches!(c.attempt.status_code, Some(401 | 403))
    }) {
        notices.push((
            "credential.rejected",
            serde_json::json!({ "status_code": refused.attempt.status_code, "error": refused.attempt.error }),
        ));
    }
    crate::operator::notify(
        &inner.store,
        &inner.wake,
        crate::operator::Subject {
            tenant_id: &first.tenant_id,
            sub_tenant_id: &first.sub_tenant_id,
            destination_id: &first.destination_id,
        },
        notices,
    )
    .await;
}

/// Keeps the destination's health: a batch that delivered anything clears it (and closes its
/// circuit); a batch that delivered nothing counts towards opening its circuit after
/// `--circuit-after` such batches in a row (or keeps it open, the next probe later on the
/// schedule), and towards disabling it once it has failed so for the configured window. A
/// healthy destination that delivers (the common case) costs no write: `was_failing` comes from
/// the row this batch already read.
async fn record_health(
    inner: &Inner,
    destination_id: &str,
    completions: &[Completion],
    was_failing: bool,
    circuit_was_open: bool,
    later: Later,
) -> Option<(&'static str, serde_json::Value)> {
    let now = later.now;
    let mut notice = None;
    let delivered = completions
        .iter()
        .any(|c| c.attempt.outcome == Outcome::Succeeded.as_str());
    let result = if delivered && !was_failing {
        Ok(())
    } else if delivered {
        if circuit_was_open {
            notice = Some(("destination.recovered", serde_json::json!({})));
        }
        inner.store.destination_delivered(destination_id).await
    } else {
        let window = inner.settings.auto_disable_after;
        let cutoff = now - window.as_millis() as i64;
        let last_error = completions
            .iter()
            .rev()
            .find_map(|c| c.attempt.error.as_deref())
            .unwrap_or("no answer");
        let reason = cut(&format!(
            "disabled by Pushrail: every delivery failed for {} (last error: {last_error}); enable it again once the endpoint is fixed and its queued deliveries resume",
            humantime::format_duration(window)
        ));
        match inner
            .store
            .destination_failed(destination_id, now, cutoff, &reason)
            .await
        {
            Ok(failed) if failed.disabled => {
                inner.plugins.invalidate(destination_id);
                tracing::warn!(destination = %destination_id, "destination disabled after failing for {}", humantime::format_duration(window));
                notice = Some((
                    "destination.disabled",
                    serde_json::json!({ "reason": reason }),
                ));
                Ok(())
            }
            Ok(failed) => {
                let opened =
                    open_circuit(inner, destination_id, failed.failed_batches, later).await;
                if matches!(opened, Ok(true)) {
                    notice = Some((
                        "destination.failing",
                        serde_json::json!({ "last_error": last_error, "failed_batches": failed.failed_batches }),
                    ));
                }
                opened.map(|_| ())
            }
            Err(error) => Err(error),
        }
    };
    if let Err(error) = result {
        tracing::error!(%error, destination = %destination_id, "recording the destination's health failed");
    }
    notice
}

/// Opens the circuit of a destination whose last `failed_batches` batches delivered nothing,
/// once they reach `--circuit-after`; each further failed batch (a failed probe) puts the next
/// probe later on the schedule.
/// True when this call opened the circuit (rather than keeping it open).
async fn open_circuit(
    inner: &Inner,
    destination_id: &str,
    failed_batches: i64,
    later: Later,
) -> sqlx::Result<bool> {
    let after = i64::from(inner.settings.circuit_after);
    if after == 0 || failed_batches < after {
        return Ok(false);
    }
    let probes_failed = (failed_batches - after) as usize;
    let delay = retry::probe_delay(&inner.settings.retry, probes_failed, later.jitter);
    if probes_failed == 0 {
        tracing::warn!(destination = %destination_id, "circuit opened after {after} batches in a row delivered nothing; probing one delivery at a time");
    }
    inner
        .store
        .open_circuit(destination_id, later.now + delay.as_millis() as i64)
        .await?;
    Ok(probes_failed == 0)
}

/// What a batch handed to its plugin got back.
struct Sent {
    outcomes: Vec<crate::sandbox::Outcome>,
    /// Whether the destination was failing (every batch refused) when this one was claimed.
    failing: bool,
    /// Whether its circuit was open (this batch is a probe).
    circuit_open: bool,
}

/// The plugin's answers for the batch, or why it was not sent.
async fn attempt(inner: &Inner, batch: &[ClaimedDelivery]) -> Result<Sent, NotSent> {
    let first = &batch[0];
    let scope = first.scope();
    let destination = match inner
        .store
        .destinations_for_delivery(&scope, std::slice::from_ref(&first.destination_id))
        .await
    {
        Ok(mut rows) => rows.pop(),
        Err(error) => {
            return Err(
                Failure::retryable(format!("loading the destination failed: {error}")).into(),
            )
        }
    };
    let destination = match destination {
        None | Some((_, true)) => {
            inner.plugins.invalidate(&first.destination_id);
            return Err(Failure::permanent("the destination was deleted").into());
        }
        Some((row, false)) if !row.enabled() => {
            inner.plugins.invalidate(&row.id);
            return Err(NotSent::Paused);
        }
        Some((row, false)) => row,
    };
    let Some(plugin) = inner.plugins.get(&destination.type_id) else {
        return Err(Failure::retryable(format!(
            "no plugin for destination type {:?} is loaded",
            destination.type_id
        ))
        .into());
    };
    // The sealed credential is read per batch (cheap), so a rotation is seen by the very next
    // batch on every host; it is decrypted only when a new session is opened with it.
    let sealed = match &destination.credential_id {
        None => None,
        Some(id) => match inner.store.sealed_credential(&scope, id).await {
            Err(error) => {
                return Err(
                    Failure::retryable(format!("loading the credential failed: {error}")).into(),
                )
            }
            Ok(None) => {
                return Err(
                    Failure::permanent("the destination's credential no longer exists").into(),
                )
            }
            Ok(Some((kind, sealed))) => Some((id.clone(), kind, sealed)),
        },
    };
    if sealed.is_none() && plugin.info.credential_required {
        return Err(Failure::permanent("this destination type needs a credential").into());
    }
    // A role is assumed here, by the host: the session is opened with the temporary keys, and
    // the key of the warm session names them, so fresh keys open a fresh session.
    let assumed = match &sealed {
        Some((id, kind, ciphertext)) if kind == aws_roles::KIND => {
            Some(assume_role(inner, &scope, &destination.id, id, ciphertext).await?)
        }
        _ => None,
    };
    let key = {
        let (id, kind, ciphertext) = match &sealed {
            Some((id, kind, sealed)) => (id.as_bytes(), kind.as_bytes(), &sealed.ciphertext[..]),
            None => (&b""[..], &b""[..], &b""[..]),
        };
        let temporary = assumed
            .as_ref()
            .map_or(&b""[..], |keys| keys.access_key_id.as_bytes());
        SessionKey::new(
            &destination.id,
            &[
                destination.type_id.as_bytes(),
                destination.config.as_bytes(),
                id,
                kind,
                ciphertext,
                temporary,
            ],
        )
    };
    let vault = inner.vault.clone();
    let config = destination.config.clone();
    let spec = move || {
        let credential = match (sealed, assumed) {
            (None, _) => None,
            (Some(_), Some(keys)) => Some(Credential {
                kind: aws_roles::ACCESS_KEY_KIND.to_owned(),
                secret: keys.secret_json().to_string(),
            }),
            (Some((id, kind, sealed)), None) => {
                let context = crate::credentials::context(&scope, &id);
                let plain = vault.open(&context, &sealed).map_err(|error| {
                    Failure::permanent(format!("the credential cannot be decrypted: {error}"))
                })?;
                Some(Credential {
                    kind,
                    secret: String::from_utf8_lossy(&plain).into_owned(),
                })
            }
        };
        Ok(SessionSpec { config, credential })
    };
    let events = batch
        .iter()
        .map(|d| Event {
            id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            occurred_at: d.occurred_at.max(0) as u64,
            payload: d.payload.clone().into_bytes(),
            attributes: Vec::new(),
        })
        .collect();
    let failing = destination.failing_since.is_some();
    let circuit_open = destination.circuit_until.is_some();
    Ok(Sent {
        outcomes: inner.plugins.deliver(&plugin, key, spec, events).await?,
        failing,
        circuit_open,
    })
}

/// The temporary keys of an `aws_role` credential: cached, or assumed now with the role ARN
/// (decrypted only then) and the sub-tenant's external id.
async fn assume_role(
    inner: &Inner,
    scope: &Scope,
    destination_id: &str,
    credential_id: &str,
    sealed: &Sealed,
) -> Result<aws_roles::TemporaryKeys, Failure> {
    let role = || async {
        let context = crate::credentials::context(scope, credential_id);
        let plain = inner.vault.open(&context, sealed).map_err(|error| {
            AssumeError::permanent(format!("the credential cannot be decrypted: {error}"))
        })?;
        let secret: serde_json::Value = serde_json::from_slice(&plain)
            .map_err(|_| AssumeError::permanent("the aws_role credential is not JSON"))?;
        let arn = secret["role_arn"]
            .as_str()
            .ok_or_else(|| AssumeError::permanent("the aws_role credential has no role_arn"))?
            .to_owned();
        let external_id =
            inner.store.aws_external_id(scope).await.map_err(|e| {
                AssumeError::retryable(format!("loading the external id failed: {e}"))
            })?;
        Ok(Role {
            arn,
            external_id,
            session_name: destination_id.to_owned(),
        })
    };
    inner
        .aws_roles
        .keys(credential_id, &sealed.ciphertext, role)
        .await
        .map_err(|error| {
            if error.retryable {
                Failure::retryable(error.message)
            } else {
                Failure::permanent(error.message)
            }
        })
}

/// Why a batch was not handed to its plugin.
enum NotSent {
    /// Every delivery of the batch records this failure as its attempt.
    Failed(Failure),
    /// The destination is disabled: its work waits in the queue until it is enabled again.
    Paused,
}

impl From<Failure> for NotSent {
    fn from(failure: Failure) -> Self {
        Self::Failed(failure)
    }
}

/// When a batch's failures are due again: from `now`, by the schedule times `jitter`.
#[derive(Clone, Copy)]
struct Later {
    now: i64,
    jitter: retry::Jitter,
}

fn completion(
    inner: &Inner,
    delivery: &ClaimedDelivery,
    result: &EventResult,
    started_at: i64,
    duration_ms: i64,
    later: Later,
) -> Completion {
    let n = delivery.attempt_count + 1;
    let attempts_made = delivery.retry_index as usize + 1;
    let (outcome, status_code, error, excerpt) = match result {
        Ok(ok) => (
            Outcome::Succeeded,
            ok.status_code,
            None,
            ok.response_excerpt.clone(),
        ),
        Err(f) => {
            let outcome = match f.kind {
                FailureKind::Retryable => Outcome::RetryableError,
                FailureKind::Permanent => Outcome::PermanentError,
            };
            (
                outcome,
                f.status_code,
                Some(f.message.clone()),
                f.response_excerpt.clone(),
            )
        }
    };
    let (status, next_attempt_at) = match (outcome, result) {
        (Outcome::Succeeded, _) => ("succeeded", None),
        (Outcome::RetryableError, Err(failure)) => {
            let retry_after = failure.retry_after_ms.map(Duration::from_millis);
            match retry::next_delay(
                &inner.settings.retry,
                attempts_made,
                retry_after,
                later.jitter,
            ) {
                Some(delay) => ("pending", Some(later.now + delay.as_millis() as i64)),
                None => ("failed", None),
            }
        }
        _ => ("failed", None),
    };
    Completion {
        delivery_id: delivery.id.clone(),
        lease_owner: delivery.lease_owner.clone(),
        attempt: AttemptRow {
            n,
            started_at,
            duration_ms,
            outcome: outcome.as_str().to_owned(),
            status_code: status_code.map(i64::from),
            error: error.map(|e| cut(&e)),
            response_excerpt: excerpt.map(|e| cut(&e)),
        },
        status,
        next_attempt_at,
        retry_index: attempts_made as i64,
    }
}

/// Text a peer or plugin chose, made fit for the log: bounded, and without NUL, which
/// PostgreSQL's TEXT refuses (one such answer must not stop the completer for everyone).
fn cut(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '\0')
        .take(MAX_LOG_TEXT)
        .collect()
}
