//! Batches of events sent as a few batch requests (SQS `SendMessageBatch`, Kinesis `PutRecords`,
//! SNS `PublishBatch`, ...), each answered for each of its entries.
//!
//! A [`Plan`] keeps one slot per event: events refused before anything is sent (a payload that is
//! not JSON, a key that cannot be rendered) are answered at once, the others are cut into
//! requests by [`split`]. [`Plan::send`] sends them in one host call and [`Plan::finish`] pairs
//! each answer with its own events, so every AWS-style plugin answers in event order the same way.
//!
//! ```ignore
//! fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
//!     let entries = events.iter().map(|e| self.entry(e)).collect();
//!     let plan = batch::Plan::new(entries, Entry::size, MAX_ENTRIES, MAX_BYTES, |entries| {
//!         self.request(entries)
//!     });
//!     plan.send(read_answer)
//! }
//! ```

use std::ops::Range;

use crate::{http, DeliveryResult, Failure};

/// A batch ready to send: a slot per event (`Some` for those already answered) and the requests
/// for the others.
#[derive(Debug)]
pub struct Plan {
    /// One per event, in the order given; `Some` when answered before sending.
    pub results: Vec<Option<DeliveryResult>>,
    /// The requests, in the order they are sent and answered.
    pub requests: Vec<Planned>,
}

/// One request of a [`Plan`].
#[derive(Debug)]
pub struct Planned {
    /// The positions (in the batch) of its entries, in the order they stand in the request.
    pub events: Vec<usize>,
    /// The request, or why it could not be made (then each of its events gets that error).
    pub request: Result<http::Request, http::Error>,
}

impl Plan {
    /// Plans `entries`, one per event in order (`Err`: answered now, not sent): the others go in
    /// requests of at most `max_items` entries and `max_bytes` bytes by `size` (see [`split`]),
    /// each made by `request` from its entries.
    pub fn new<E>(
        entries: Vec<Result<E, Failure>>,
        size: impl Fn(&E) -> usize,
        max_items: usize,
        max_bytes: usize,
        mut request: impl FnMut(&[E]) -> Result<http::Request, http::Error>,
    ) -> Self {
        let mut results = Vec::with_capacity(entries.len());
        let mut positions = Vec::new();
        let mut ready = Vec::new();
        for (position, entry) in entries.into_iter().enumerate() {
            match entry {
                Ok(entry) => {
                    results.push(None);
                    positions.push(position);
                    ready.push(entry);
                }
                Err(failure) => results.push(Some(Err(failure))),
            }
        }
        let sizes = ready.iter().map(size).collect::<Vec<_>>();
        let requests = split(&sizes, max_items, max_bytes)
            .into_iter()
            .map(|range| Planned {
                events: positions[range.clone()].to_vec(),
                request: request(&ready[range]),
            })
            .collect();
        Self { results, requests }
    }

    /// Sends every request at once (one host call) and finishes with the answers.
    pub fn send(
        self,
        read_answer: impl Fn(&http::Response, usize) -> Vec<DeliveryResult>,
    ) -> Vec<DeliveryResult> {
        self.send_with(
            |requests| {
                let in_flight = requests.len();
                http::send_all(requests, in_flight)
            },
            read_answer,
        )
    }

    /// Sends the requests with `send` (answers in order, one per request) and finishes with the
    /// answers: for requests that need more than [`http::send_all`] on the way, such as a bearer
    /// token that is fetched and, after a 401, fetched again.
    pub fn send_with<E: Into<Failure>>(
        self,
        send: impl FnOnce(Vec<Result<http::Request, http::Error>>) -> Vec<Result<http::Response, E>>,
        read_answer: impl Fn(&http::Response, usize) -> Vec<DeliveryResult>,
    ) -> Vec<DeliveryResult> {
        let (events, requests): (Vec<_>, Vec<_>) = self
            .requests
            .into_iter()
            .map(|p| (p.events, p.request))
            .unzip();
        let answers = send(requests);
        fill(self.results, events, answers, read_answer)
    }

    /// One result per event, in order: each request's answer (one per request, in order) read by
    /// `read_answer` (an outcome for each of its `count` entries, in order) for its own events. An error answers each of its events; a request without
    /// an answer, and an event without an outcome, are retryable.
    pub fn finish(
        self,
        answers: Vec<Result<http::Response, http::Error>>,
        read_answer: impl Fn(&http::Response, usize) -> Vec<DeliveryResult>,
    ) -> Vec<DeliveryResult> {
        let events = self.requests.into_iter().map(|p| p.events).collect();
        fill(self.results, events, answers, read_answer)
    }
}

fn fill<E: Into<Failure>>(
    mut results: Vec<Option<DeliveryResult>>,
    requests: Vec<Vec<usize>>,
    answers: Vec<Result<http::Response, E>>,
    read_answer: impl Fn(&http::Response, usize) -> Vec<DeliveryResult>,
) -> Vec<DeliveryResult> {
    let mut answers = answers.into_iter();
    for events in requests {
        let outcomes = match answers.next() {
            Some(Ok(response)) => read_answer(&response, events.len()),
            Some(Err(error)) => {
                let failure: Failure = error.into();
                vec![Err(failure); events.len()]
            }
            None => vec![Err(Failure::retryable("the request was not sent")); events.len()],
        };
        for (position, outcome) in events.into_iter().zip(outcomes) {
            results[position] = Some(outcome);
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Failure::retryable("the event was not sent"))))
        .collect()
}

/// A JSON request body that holds `items` (each already JSON text) as one array:
/// `{open}item,item,...{close}`, e.g. `{"messages":[` ... `]}`.
pub fn json_array<'a>(open: &str, items: impl IntoIterator<Item = &'a str>, close: &str) -> String {
    let mut body = String::from(open);
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(item);
    }
    body.push_str(close);
    body
}

/// Cuts `sizes` (in order) into requests of at most `max_items` items and `max_bytes` bytes; an
/// item larger than `max_bytes` goes alone, and the service decides.
pub fn split(sizes: &[usize], max_items: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, size) in sizes.iter().enumerate() {
        if i > start && (i - start == max_items || bytes + size > max_bytes) {
            ranges.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        ranges.push(start..sizes.len());
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Delivered, FailureKind};

    fn split(sizes: &[usize], max_items: usize, max_bytes: usize) -> Vec<(usize, usize)> {
        super::split(sizes, max_items, max_bytes)
            .into_iter()
            .map(|r| (r.start, r.end))
            .collect()
    }

    #[test]
    fn splits_by_count() {
        assert_eq!(split(&[1; 10], 10, 100), [(0, 10)]);
        assert_eq!(split(&[1; 23], 10, 100), [(0, 10), (10, 20), (20, 23)]);
    }

    #[test]
    fn splits_by_bytes() {
        assert_eq!(
            split(&[40, 40, 40, 10, 100], 10, 100),
            [(0, 2), (2, 4), (4, 5)]
        );
        // Exactly full, then the next one starts a request.
        assert_eq!(split(&[50, 50, 1], 10, 100), [(0, 2), (2, 3)]);
    }

    #[test]
    fn an_oversized_item_goes_alone() {
        assert_eq!(split(&[10, 150, 10], 10, 100), [(0, 1), (1, 2), (2, 3)]);
        assert_eq!(split(&[150], 10, 100), [(0, 1)]);
    }

    #[test]
    fn json_array_joins_items() {
        assert_eq!(json_array("[", [], "]"), "[]");
        assert_eq!(
            json_array(r#"{"rows":["#, [r#"{"a":1}"#, "2"], "]}"),
            r#"{"rows":[{"a":1},2]}"#
        );
    }

    #[test]
    fn nothing_to_split() {
        assert_eq!(split(&[], 10, 100), []);
        let plan = Plan::new(
            Vec::<Result<usize, Failure>>::new(),
            |s| *s,
            10,
            100,
            |_| unreachable!(),
        );
        assert!(plan.results.is_empty() && plan.requests.is_empty());
        assert!(plan.finish(Vec::new(), |_, _| unreachable!()).is_empty());
    }

    fn response(body: &str) -> http::Response {
        http::Response {
            status: 200,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// Each byte of the body answers one entry: `o` delivered, `x` refused; a short body leaves
    /// the rest unanswered.
    fn read_answer(response: &http::Response, count: usize) -> Vec<DeliveryResult> {
        response
            .body
            .iter()
            .take(count)
            .map(|b| match b {
                b'o' => Ok(Delivered {
                    status_code: Some(response.status),
                    response_excerpt: None,
                }),
                _ => Err(Failure::permanent("refused")),
            })
            .collect()
    }

    #[test]
    fn plans_the_entries_that_can_be_sent() {
        let entries = vec![Ok(60), Err(Failure::permanent("not JSON")), Ok(60), Ok(30)];
        let plan = Plan::new(
            entries,
            |s| *s,
            10,
            100,
            |sizes| Err(http::Error::permanent(format!("{sizes:?}"))),
        );
        assert!(plan.results[0].is_none());
        assert_eq!(
            plan.results[1].clone().unwrap().unwrap_err().message,
            "not JSON"
        );
        assert!(plan.results[2].is_none() && plan.results[3].is_none());
        let requests = plan
            .requests
            .iter()
            .map(|p| (p.events.clone(), p.request.clone().unwrap_err().message))
            .collect::<Vec<_>>();
        assert_eq!(
            requests,
            [
                (vec![0], "[60]".to_owned()),
                (vec![2, 3], "[60, 30]".to_owned())
            ]
        );
    }

    #[test]
    fn finishes_in_event_order() {
        let entries = vec![
            Ok(1),
            Err(Failure::permanent("refused before sending")),
            Ok(1),
            Ok(1),
            Ok(1),
            Ok(1),
            Ok(1),
            Ok(1),
        ];
        // Requests of two: events [0, 2], [3, 4], [5, 6], [7].
        let plan = Plan::new(
            entries,
            |s| *s,
            2,
            100,
            |_| Err(http::Error::permanent("not sent in tests")),
        );
        assert_eq!(plan.requests.len(), 4);
        let results = plan.finish(
            vec![
                // Answered: one delivered, one refused.
                Ok(response("ox")),
                // Errored: both events get the error.
                Err(http::Error::retryable("connection refused")),
                // Answered for the first entry only.
                Ok(response("o")),
                // No answer at all for the fourth request.
            ],
            read_answer,
        );
        assert_eq!(results.len(), 8);
        assert_eq!(results[0].clone().unwrap().status_code, Some(200));
        let before = results[1].clone().unwrap_err();
        assert_eq!(before.kind, FailureKind::Permanent);
        assert_eq!(before.message, "refused before sending");
        assert_eq!(results[2].clone().unwrap_err().message, "refused");
        for errored in &results[3..5] {
            let failure = errored.clone().unwrap_err();
            assert_eq!(failure.kind, FailureKind::Retryable);
            assert_eq!(failure.message, "connection refused");
        }
        assert!(results[5].is_ok());
        let unanswered = results[6].clone().unwrap_err();
        assert_eq!(unanswered.kind, FailureKind::Retryable);
        assert_eq!(unanswered.message, "the event was not sent");
        let missing = results[7].clone().unwrap_err();
        assert_eq!(missing.kind, FailureKind::Retryable);
        assert_eq!(missing.message, "the request was not sent");
    }
}
