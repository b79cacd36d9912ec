//! One plugin call for one batch of one destination, and its outcome per delivery.

use std::time::{Duration, Instant};

use super::{retry, Inner};
use crate::clock;
use crate::plugins::{
    Credential, Delivered, DeliveryRequest, Event, Failure, FailureKind, InvokeError,
};
use crate::store::{AttemptRow, ClaimedDelivery, Completion, Outcome};

/// Error texts and peer excerpts kept in the delivery log are cut to this many characters.
const MAX_LOG_TEXT: usize = 1024;

/// Delivers `batch` (all for one destination) and says what became of each delivery.
pub(super) async fn execute(inner: &Inner, batch: Vec<ClaimedDelivery>) -> Vec<Completion> {
    let started_at = clock::now_ms();
    let clock = Instant::now();
    let result = attempt(inner, &batch).await;
    let duration_ms = clock.elapsed().as_millis() as i64;
    batch
        .iter()
        .map(|delivery| completion(inner, delivery, &result, started_at, duration_ms))
        .collect()
}

async fn attempt(inner: &Inner, batch: &[ClaimedDelivery]) -> Result<Delivered, Failure> {
    let first = &batch[0];
    let scope = first.scope();
    let destination = match inner
        .store
        .destinations_for_delivery(&scope, std::slice::from_ref(&first.destination_id))
        .await
    {
        Ok(mut rows) => rows.pop(),
        Err(error) => {
            return Err(retryable(format!(
                "loading the destination failed: {error}"
            )))
        }
    };
    let destination = match destination {
        None | Some((_, true)) => return Err(permanent("the destination was deleted")),
        Some((row, false)) if !row.enabled() => {
            return Err(permanent("the destination is disabled"))
        }
        Some((row, false)) => row,
    };
    let Some(plugin) = inner.plugins.get(&destination.type_id) else {
        return Err(retryable(format!(
            "no plugin for destination type {:?} is loaded",
            destination.type_id
        )));
    };
    let credential = match &destination.credential_id {
        None => None,
        Some(id) => match inner.store.sealed_credential(&scope, id).await {
            Err(error) => return Err(retryable(format!("loading the credential failed: {error}"))),
            Ok(None) => return Err(permanent("the destination's credential no longer exists")),
            Ok(Some((kind, sealed))) => {
                let context = crate::credentials::context(&scope, id);
                match inner.vault.open(&context, &sealed) {
                    Ok(plain) => Some(Credential {
                        kind,
                        secret: String::from_utf8_lossy(&plain).into_owned(),
                    }),
                    Err(error) => {
                        return Err(permanent(format!(
                            "the credential cannot be decrypted: {error}"
                        )))
                    }
                }
            }
        },
    };
    if credential.is_none() && plugin.info.credential_required {
        return Err(permanent("this destination type needs a credential"));
    }
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
    let request = DeliveryRequest {
        config: destination.config.clone(),
        credential,
        events,
    };
    let label = format!("{}:{}", destination.type_id, destination.id);
    match inner.plugins.deliver(&plugin, request, &label).await {
        Ok(result) => result,
        Err(error @ InvokeError::Timeout(_)) => Err(retryable(format!("timeout: {error}"))),
        Err(error) => Err(retryable(error.to_string())),
    }
}

fn completion(
    inner: &Inner,
    delivery: &ClaimedDelivery,
    result: &Result<Delivered, Failure>,
    started_at: i64,
    duration_ms: i64,
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
            match retry::next_delay(&inner.settings.retry, attempts_made, retry_after) {
                Some(delay) => ("pending", Some(clock::now_ms() + delay.as_millis() as i64)),
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

fn failure(kind: FailureKind, message: String) -> Failure {
    Failure {
        kind,
        message,
        status_code: None,
        retry_after_ms: None,
        response_excerpt: None,
    }
}

fn retryable(message: String) -> Failure {
    failure(FailureKind::Retryable, message)
}

fn permanent(message: impl Into<String>) -> Failure {
    failure(FailureKind::Permanent, message.into())
}
