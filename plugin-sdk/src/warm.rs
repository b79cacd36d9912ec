//! A connection kept in a session between batches.

use crate::{DeliveryResult, Event, Failure, FailureKind};

/// A connection a session keeps between batches: dialled on first use, reused after, dropped
/// after a failure so the next batch dials a fresh one.
///
/// A peer may close a connection while it sits idle between batches; the first write then
/// fails. So when a *reused* connection fails with a retryable failure, `with` dials once more
/// and runs the work again on the fresh connection. The work must therefore be safe to repeat,
/// which every at-least-once destination already is (the event id is the idempotency key).
pub struct Warm<C> {
    connection: Option<C>,
}

impl<C> Default for Warm<C> {
    fn default() -> Self {
        Self { connection: None }
    }
}

impl<C> Warm<C> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `work` on the kept connection, dialling one with `connect` when there is none.
    pub fn with<T>(
        &mut self,
        mut connect: impl FnMut() -> Result<C, Failure>,
        mut work: impl FnMut(&mut C) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let reused = self.connection.is_some();
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => connect()?,
        };
        match work(&mut connection) {
            Ok(value) => {
                self.connection = Some(connection);
                Ok(value)
            }
            Err(failure) if reused && failure.kind == FailureKind::Retryable => {
                drop(connection);
                let mut fresh = connect()?;
                let value = work(&mut fresh)?;
                self.connection = Some(fresh);
                Ok(value)
            }
            Err(failure) => Err(failure),
        }
    }

    /// Delivers a batch on the kept connection for a protocol whose peer answers each event on
    /// its own (a publisher confirm, a `PUBACK`, a reply), and gives one result per event.
    ///
    /// `work` writes each event's answer into its slot as the peer gives it and returns `Err`
    /// when the connection fails. Whether the work is repeated depends on what was answered:
    ///
    /// - Nothing: the connection may be a kept one the peer closed while it sat idle, so the
    ///   failure goes through [`Warm::with`], which dials once more and repeats the work with
    ///   every slot empty again.
    /// - Something: the connection was alive and failed in the middle. Repeating would send the
    ///   answered events a second time for a peer that is in trouble, so the events without an
    ///   answer get the failure (the host retries them) and the connection is dropped.
    ///
    /// An answer `work` records without the peer (an event it cannot encode) counts too, so a
    /// batch holding such an event is not repeated; its other events are retried by the host.
    ///
    /// A kept connection that timed out waiting for the peer is dialled again like a closed
    /// one, although a peer that went quiet under load would likely make the repeat wait out a
    /// second timeout: a [`Failure`] tells a timeout only in its message text, and a connection
    /// a firewall dropped silently while idle (which a fresh connection does cure) times out
    /// the same way.
    ///
    /// An event `work` leaves without an answer although it returned `Ok` is a bug of the
    /// plugin's; it gets a retryable failure rather than be lost.
    pub fn deliver(
        &mut self,
        events: &[Event],
        connect: impl FnMut() -> Result<C, Failure>,
        mut work: impl FnMut(&mut C, &mut [Option<DeliveryResult>]) -> Result<(), Failure>,
    ) -> Vec<DeliveryResult> {
        if events.is_empty() {
            return Vec::new();
        }
        let mut answers: Vec<Option<DeliveryResult>> = vec![None; events.len()];
        // `Ok(Some(_))` keeps a failure after answers away from `with`, which would repeat it.
        // `with` repeats only an attempt that recorded nothing, so the slots start empty again.
        let outcome = self.with(connect, |connection| match work(connection, &mut answers) {
            Ok(()) => Ok(None),
            Err(failure) if answers.iter().any(Option::is_some) => Ok(Some(failure)),
            Err(failure) => Err(failure),
        });
        let failure = match outcome {
            Ok(None) => None,
            Ok(Some(failure)) => {
                self.connection = None;
                Some(failure)
            }
            Err(failure) => Some(failure),
        };
        answers
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| {
                    Err(failure.clone().unwrap_or_else(|| {
                        Failure::retryable("the peer gave no answer for this event")
                    }))
                })
            })
            .collect()
    }

    /// Whether a connection is kept right now.
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// Takes the kept connection out (to close it politely, say).
    pub fn take(&mut self) -> Option<C> {
        self.connection.take()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::Delivered;
    use FailureKind::{Permanent, Retryable};

    /// A connection of the tests: which dial opened it.
    #[derive(Debug)]
    struct Peer(u32);

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event {
                id: format!("evt_{i}"),
                event_type: "order.created".into(),
                occurred_at: 0,
                payload: b"{}".to_vec(),
                attributes: Vec::new(),
            })
            .collect()
    }

    /// Dials peers numbered from 1, counting the dials.
    fn dial(dials: &Cell<u32>) -> impl FnMut() -> Result<Peer, Failure> + '_ {
        || {
            dials.set(dials.get() + 1);
            Ok(Peer(dials.get()))
        }
    }

    fn taken(peer: &Peer) -> Option<DeliveryResult> {
        Some(Ok(Delivered {
            status_code: None,
            response_excerpt: Some(format!("taken by peer {}", peer.0)),
        }))
    }

    fn excerpts(results: &[DeliveryResult]) -> Vec<String> {
        results
            .iter()
            .map(|r| match r {
                Ok(delivered) => delivered.response_excerpt.clone().unwrap(),
                Err(failure) => {
                    let kind = match failure.kind {
                        Retryable => "retryable",
                        Permanent => "permanent",
                    };
                    format!("{kind}: {}", failure.message)
                }
            })
            .collect()
    }

    /// A `Warm` holding a connection from an earlier batch, and the count of dials so far.
    fn kept(dials: &Cell<u32>) -> Warm<Peer> {
        let mut warm = Warm::new();
        warm.with(dial(dials), |_| Ok(())).unwrap();
        warm
    }

    #[test]
    fn answers_each_event_and_reuses_the_connection() {
        let dials = Cell::new(0);
        let mut warm = Warm::new();
        for _ in 0..2 {
            let results = warm.deliver(&events(2), dial(&dials), |peer, answers| {
                answers.fill(taken(peer));
                Ok(())
            });
            assert_eq!(excerpts(&results), ["taken by peer 1", "taken by peer 1"]);
        }
        assert_eq!(dials.get(), 1);
        assert!(warm.is_connected());
    }

    #[test]
    fn a_kept_connection_that_fails_before_any_answer_is_dialled_again() {
        let dials = Cell::new(0);
        let mut warm = kept(&dials);
        let mut attempts = 0;
        let results = warm.deliver(&events(2), dial(&dials), |peer, answers| {
            attempts += 1;
            assert!(answers.iter().all(Option::is_none), "fresh slots");
            if peer.0 == 1 {
                return Err(Failure::retryable("the server closed the connection"));
            }
            answers.fill(taken(peer));
            Ok(())
        });
        assert_eq!(excerpts(&results), ["taken by peer 2", "taken by peer 2"]);
        assert_eq!((attempts, dials.get()), (2, 2));
        assert!(warm.is_connected(), "the fresh connection is kept");

        // The dial again fails: every event gets that failure.
        let mut warm = kept(&dials);
        let results = warm.deliver(
            &events(2),
            || Err(Failure::retryable("connection refused")),
            |_, _| Err(Failure::retryable("the server closed the connection")),
        );
        assert_eq!(
            excerpts(&results),
            [
                "retryable: connection refused",
                "retryable: connection refused"
            ]
        );
        assert!(!warm.is_connected());
    }

    #[test]
    fn a_failure_after_an_answer_is_not_repeated() {
        let dials = Cell::new(0);
        let mut warm = kept(&dials);
        let mut attempts = 0;
        let results = warm.deliver(&events(3), dial(&dials), |peer, answers| {
            attempts += 1;
            answers[0] = taken(peer);
            Err(Failure::retryable("the server closed the connection"))
        });
        assert_eq!(
            excerpts(&results),
            [
                "taken by peer 1",
                "retryable: the server closed the connection",
                "retryable: the server closed the connection"
            ]
        );
        assert_eq!((attempts, dials.get()), (1, 1));
        assert!(!warm.is_connected(), "dropped: the next batch dials");

        // An answer without the peer (an event that cannot be encoded) counts too.
        let mut warm = kept(&dials);
        let results = warm.deliver(&events(2), dial(&dials), |_, answers| {
            answers[1] = Some(Err(Failure::permanent("event evt_1 is too large")));
            Err(Failure::retryable("the server closed the connection"))
        });
        assert_eq!(
            excerpts(&results),
            [
                "retryable: the server closed the connection",
                "permanent: event evt_1 is too large"
            ]
        );
        assert_eq!(dials.get(), 2, "not dialled again");
        assert!(!warm.is_connected());
    }

    #[test]
    fn only_a_kept_connection_with_a_retryable_failure_is_dialled_again() {
        // A connection dialled for this batch: the peer is down, not a stale connection.
        let dials = Cell::new(0);
        let mut warm = Warm::new();
        let results = warm.deliver(&events(2), dial(&dials), |_, _| {
            Err(Failure::retryable("timed out waiting for the server"))
        });
        assert_eq!(results[1].as_ref().unwrap_err().kind, Retryable);
        assert_eq!(dials.get(), 1);
        assert!(!warm.is_connected());

        // A permanent failure would fail the same way on a fresh connection.
        let dials = Cell::new(0);
        let mut warm = kept(&dials);
        let results = warm.deliver(&events(2), dial(&dials), |_, _| {
            Err(Failure::permanent("not authorized"))
        });
        assert_eq!(
            excerpts(&results),
            ["permanent: not authorized", "permanent: not authorized"]
        );
        assert_eq!(dials.get(), 1);
        assert!(!warm.is_connected());
    }

    #[test]
    fn an_event_left_without_an_answer_is_retried() {
        let dials = Cell::new(0);
        let mut warm = Warm::new();
        let results = warm.deliver(&events(3), dial(&dials), |peer, answers| {
            answers[0] = taken(peer);
            answers[2] = taken(peer);
            Ok(())
        });
        let missing = results[1].as_ref().unwrap_err();
        assert_eq!(missing.kind, Retryable);
        assert_eq!(missing.message, "the peer gave no answer for this event");
        assert!(results[0].is_ok() && results[2].is_ok());
        assert!(warm.is_connected());
    }

    #[test]
    fn an_empty_batch_dials_nothing() {
        let dials = Cell::new(0);
        let mut warm = Warm::new();
        let results = warm.deliver(&[], dial(&dials), |_, _| panic!("no work"));
        assert!(results.is_empty());
        assert_eq!(dials.get(), 0);
        assert!(!warm.is_connected());
    }

    #[test]
    fn a_failed_dial_fails_every_event() {
        let mut warm: Warm<Peer> = Warm::new();
        let results = warm.deliver(
            &events(2),
            || Err(Failure::permanent("host not allowed")),
            |_, _| panic!("no connection"),
        );
        assert_eq!(
            excerpts(&results),
            ["permanent: host not allowed", "permanent: host not allowed"]
        );
    }
}
