//! What the session remembers about its producer, and how one batch's records become Produce
//! requests: the idempotent producer's sequence numbers, the retry within a call, and the split of
//! a partition batch the broker found too large. The brokers are behind [`Transport`], so all of
//! it runs against a simulated broker in the unit tests.

use std::collections::BTreeMap;

use kafka_protocol::records::{Record, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE};
use pushrail_plugin_sdk::{Failure, FailureKind};

/// `MESSAGE_TOO_LARGE`: a record batch over the broker's or topic's `max.message.bytes`.
pub const MESSAGE_TOO_LARGE: i16 = 10;
/// `RECORD_LIST_TOO_LARGE`: a record batch over the segment size.
pub const RECORD_LIST_TOO_LARGE: i16 = 18;
/// `DUPLICATE_SEQUENCE_NUMBER`: the broker already has this batch from this producer.
pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;

/// Errors saying the broker no longer agrees with the producer's id, epoch or sequences:
/// `OUT_OF_ORDER_SEQUENCE_NUMBER`, `INVALID_PRODUCER_EPOCH`, `UNKNOWN_PRODUCER_ID`,
/// `PRODUCER_FENCED` (what tansu answers for a stale epoch).
fn lost_sequence(code: i16) -> bool {
    matches!(code, 45 | 47 | 59 | 90)
}

/// A producer id and epoch granted by the cluster, with the next sequence number of each
/// partition written to under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
    sequences: BTreeMap<i32, i32>,
}

impl Producer {
    pub fn new(id: i64, epoch: i16) -> Self {
        Self {
            id,
            epoch,
            sequences: BTreeMap::new(),
        }
    }

    /// The base sequence of the next batch to `partition`: 0 for a new producer.
    pub fn next(&self, partition: i32) -> i32 {
        self.sequences.get(&partition).copied().unwrap_or(0)
    }

    /// `records` were written to `partition`: the next batch starts after them.
    pub fn advance(&mut self, partition: i32, records: usize) {
        let next = increment_sequence(self.next(partition), records);
        self.sequences.insert(partition, next);
    }
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap from `i32::MAX` to 0.
pub fn increment_sequence(sequence: i32, increment: usize) -> i32 {
    let increment = i32::try_from(increment).unwrap_or(i32::MAX);
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// The idempotent producer of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotence {
    /// The config turned it off: batches carry no producer id.
    Off,
    /// None yet, or the last one was given up: ask the cluster before the next batch.
    Wanted,
    Granted(Producer),
    /// The cluster grants none (no `InitProducerId`, or a refusal): batches carry no producer id
    /// for the rest of the session.
    Unavailable,
}

/// The cluster's answer to `InitProducerId`.
pub enum Grant {
    Granted(i64, i16),
    /// It will not grant one (no such API, or a non-retriable refusal).
    Refused,
    /// It could not now (a lost connection, a retriable error): ask again next batch.
    NotNow,
}

impl Idempotence {
    /// Asks the cluster for a producer id when one is wanted. A batch without one is still sent
    /// (without sequence numbers), as a producer that is not idempotent would.
    pub fn ensure(&mut self, transport: &mut impl Transport) {
        if *self == Idempotence::Wanted {
            match transport.init_producer() {
                Grant::Granted(id, epoch) => *self = Idempotence::Granted(Producer::new(id, epoch)),
                Grant::Refused => *self = Idempotence::Unavailable,
                Grant::NotNow => {}
            }
        }
    }

    /// Gives the producer up: the broker's sequence state for it is no longer known, so the next
    /// batch asks for a new producer id and starts every partition at 0.
    pub fn reset(&mut self) {
        if matches!(self, Idempotence::Granted(_)) {
            *self = Idempotence::Wanted;
        }
    }

    pub fn producer(&self) -> Option<&Producer> {
        match self {
            Idempotence::Granted(producer) => Some(producer),
            _ => None,
        }
    }

    /// The records of one batch to `partition`, carrying the producer id, epoch and the
    /// partition's next sequence numbers (or none).
    pub(crate) fn stamp(&self, partition: i32, records: &[&Record]) -> Vec<Record> {
        let (id, epoch, base) = match self.producer() {
            Some(p) => (p.id, p.epoch, p.next(partition)),
            // Base sequence -1: `kafka-protocol` puts records in one batch as long as
            // offset - sequence stays the same, so their sequences count up from -1 too.
            None => (NO_PRODUCER_ID, NO_PRODUCER_EPOCH, NO_SEQUENCE),
        };
        records
            .iter()
            .enumerate()
            .map(|(i, record)| Record {
                producer_id: id,
                producer_epoch: epoch,
                offset: i as i64,
                sequence: base.wrapping_add(i as i32),
                ..(*record).clone()
            })
            .collect()
    }
}

/// One partition's records, to be sent as one record batch.
pub type Batch = (i32, Vec<Record>);

/// What became of one partition batch.
#[derive(Debug)]
pub enum Answer {
    /// Appended at `offset` (the first record's); `duplicate`: the broker had it already.
    Written { offset: i64, duplicate: bool },
    /// The broker answered for the partition with an error code.
    Refused { code: i16, failure: Failure },
    /// It never left: no leader known, no connection to it, a batch that could not be encoded.
    NotSent(Failure),
    /// It was sent and no answer came back (the connection broke or timed out), so it may or may
    /// not have been written. `stale`: over a connection kept from an earlier batch, which the
    /// broker may have closed while it sat idle.
    Lost { failure: Failure, stale: bool },
}

/// The brokers, as the delivery logic needs them.
pub trait Transport {
    /// Sends each partition's records as one record batch (one Produce per leader): an answer
    /// per batch, in the order given.
    fn produce(&mut self, batches: &[Batch]) -> Vec<Answer>;
    /// Reads the topic's partitions and leaders again.
    fn refresh(&mut self) -> Result<(), Failure>;
    /// `InitProducerId`.
    fn init_producer(&mut self) -> Grant;
}

/// One record written: where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub partition: i32,
    /// `None` where a broker counting a batch as a duplicate did not say where it is.
    pub offset: Option<i64>,
    pub duplicate: bool,
    /// Written with a producer id and sequence numbers.
    pub idempotent: bool,
}

pub type RecordResult = Result<Written, Failure>;

/// One partition's records through this call.
enum State {
    Pending,
    Done(Vec<RecordResult>),
    /// Refused as too large with more than one record: sent again one record per batch.
    Split,
}

/// Delivers each partition's records (in order) and answers for every record, partition by
/// partition in the order given.
///
/// Each partition is one record batch; the leader's answer for it answers for its records. With
/// the idempotent producer a partition whose answer was lost or retriable is sent once more in
/// the same call, after a metadata refresh, with the same producer id, sequences and records, so
/// a batch that did land is recognised rather than written twice; without it, only a batch that
/// never left (or was lost on a connection kept from an earlier call) is. The sequences advance
/// only by batches the broker took; after any other answer to a batch that was sent, the
/// broker's sequence state is not known, so the producer is given up and the next batch starts
/// on a new producer id. A batch of several records refused as too large is sent again one
/// record per batch, on a new producer id, so only the record that is too large fails.
pub fn deliver(
    partitions: &[Batch],
    idempotence: &mut Idempotence,
    transport: &mut impl Transport,
) -> Vec<Vec<RecordResult>> {
    idempotence.ensure(transport);
    let idempotent = idempotence.producer().is_some();
    let mut states: Vec<State> = partitions.iter().map(|_| State::Pending).collect();
    let mut reset = false;
    for round in 0..2 {
        let pending: Vec<usize> = (0..partitions.len())
            .filter(|i| matches!(states[*i], State::Pending))
            .collect();
        if pending.is_empty() {
            break;
        }
        let batches: Vec<Batch> = pending
            .iter()
            .map(|i| {
                let (partition, records) = &partitions[*i];
                let records: Vec<&Record> = records.iter().collect();
                (*partition, idempotence.stamp(*partition, &records))
            })
            .collect();
        let answers = transport.produce(&batches);
        let mut again = Vec::new();
        let last_round = round == 1;
        for (n, i) in pending.into_iter().enumerate() {
            let (partition, records) = &partitions[i];
            let answer = answers.get(n);
            let (failure, sent, retry) = match answer {
                Some(Answer::Written { offset, duplicate }) => {
                    if let Idempotence::Granted(producer) = idempotence {
                        producer.advance(*partition, records.len());
                    }
                    states[i] = State::Done(written(
                        *partition,
                        records.len(),
                        *offset,
                        *duplicate,
                        idempotent,
                    ));
                    continue;
                }
                Some(Answer::Refused { code, .. })
                    if matches!(*code, MESSAGE_TOO_LARGE | RECORD_LIST_TOO_LARGE)
                        && records.len() > 1 =>
                {
                    reset = true;
                    states[i] = State::Split;
                    continue;
                }
                Some(Answer::Refused { code, failure }) if lost_sequence(*code) => {
                    (sequence_lost(failure), true, false)
                }
                Some(Answer::Refused { failure, .. }) => (failure.clone(), true, idempotent),
                Some(Answer::NotSent(failure)) => (failure.clone(), false, true),
                Some(Answer::Lost { failure, stale }) => {
                    (failure.clone(), true, idempotent || *stale)
                }
                None => (
                    Failure::retryable(format!("no answer for partition {partition}")),
                    true,
                    idempotent,
                ),
            };
            if retry && !last_round && failure.kind == FailureKind::Retryable {
                again.push((i, failure, sent));
            } else {
                reset |= sent;
                states[i] = State::Done(vec![Err(failure); records.len()]);
            }
        }
        if again.is_empty() {
            break;
        }
        if let Err(refresh) = transport.refresh() {
            // Without a fresh view of the leaders, a second round would go where the first did.
            pushrail_plugin_sdk::log::debug(&format!("no second round: {}", refresh.message));
            for (i, failure, sent) in again {
                reset |= sent;
                states[i] = State::Done(vec![Err(failure); partitions[i].1.len()]);
            }
            break;
        }
    }
    if reset {
        idempotence.reset();
    }

    partitions
        .iter()
        .zip(states)
        .map(|((partition, records), state)| match state {
            State::Done(results) => results,
            State::Split => one_by_one(*partition, records, idempotence, transport),
            State::Pending => vec![Err(Failure::retryable("not sent")); records.len()],
        })
        .collect()
}

/// Sends a partition's records one per batch, in order, after its batch was refused as too
/// large: a record refused again fails alone (the others are written once); an answer that
/// leaves the partition in doubt fails the records not yet written.
fn one_by_one(
    partition: i32,
    records: &[Record],
    idempotence: &mut Idempotence,
    transport: &mut impl Transport,
) -> Vec<RecordResult> {
    let mut results = Vec::with_capacity(records.len());
    let mut stop: Option<Failure> = None;
    for record in records {
        if let Some(failure) = &stop {
            results.push(Err(failure.clone()));
            continue;
        }
        // A producer given up after a refused batch is replaced before the next one, so no
        // record is numbered after a sequence the broker may or may not have counted.
        idempotence.ensure(transport);
        let idempotent = idempotence.producer().is_some();
        let batch = vec![(partition, idempotence.stamp(partition, &[record]))];
        let answer = transport.produce(&batch).into_iter().next();
        let (failure, sent) = match answer {
            Some(Answer::Written { offset, duplicate }) => {
                if let Idempotence::Granted(producer) = idempotence {
                    producer.advance(partition, 1);
                }
                results.extend(written(partition, 1, offset, duplicate, idempotent));
                continue;
            }
            Some(Answer::Refused { code, failure }) if lost_sequence(code) => {
                (sequence_lost(&failure), true)
            }
            Some(Answer::Refused { failure, .. }) => (failure, true),
            Some(Answer::NotSent(failure)) => (failure, false),
            Some(Answer::Lost { failure, .. }) => (failure, true),
            None => (
                Failure::retryable(format!("no answer for partition {partition}")),
                true,
            ),
        };
        if sent {
            idempotence.reset();
        }
        if failure.kind == FailureKind::Retryable {
            stop = Some(failure.clone());
        }
        results.push(Err(failure));
    }
    results
}

fn written(
    partition: i32,
    records: usize,
    offset: i64,
    duplicate: bool,
    idempotent: bool,
) -> Vec<RecordResult> {
    (0..records)
        .map(|i| {
            Ok(Written {
                partition,
                offset: (offset >= 0).then_some(offset + i as i64),
                duplicate,
                idempotent,
            })
        })
        .collect()
}

/// The broker lost track of the producer: a new one is asked for, and the records are sent
/// again later (retryable, whatever Kafka's flag for the code says).
fn sequence_lost(failure: &Failure) -> Failure {
    Failure {
        kind: FailureKind::Retryable,
        message: format!(
            "{}; the next attempt uses a new producer id",
            failure.message
        ),
        ..failure.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::records::{TimestampType, NO_PARTITION_LEADER_EPOCH};

    use crate::client::error_failure;

    fn record(value: &str) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: NO_SEQUENCE,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from(value.to_owned())),
            value: Some(Bytes::from(value.to_owned())),
            headers: Default::default(),
        }
    }

    /// What a broker remembers of a producer on one partition.
    #[derive(Default)]
    struct ProducerState {
        next: i32,
        /// (first, last) sequences of the batches it appended, newest last.
        recent: Vec<(i32, i32)>,
    }

    /// A broker with Kafka's idempotence rules, a size limit, and faults to inject.
    #[derive(Default)]
    struct Broker {
        /// Appended record values per partition.
        log: BTreeMap<i32, Vec<String>>,
        producers: BTreeMap<(i64, i32), ProducerState>,
        next_id: i64,
        /// Largest batch, as the sum of its values' lengths.
        max_batch: usize,
        /// Count the sequences of a batch refused as too large anyway (a broker that checks
        /// sequences before size); the delivery must hold up against it too.
        counts_refused: bool,
        /// Answers to give instead of processing, front first (`Some` appends but loses it).
        faults: Vec<Fault>,
        produce_calls: usize,
        refreshes: usize,
        inits: usize,
    }

    enum Fault {
        /// Append the batch, then lose the answer.
        AppendAndLose,
        /// Answer with this error code without appending.
        Refuse(i16),
    }

    impl Broker {
        fn new(max_batch: usize) -> Self {
            Self {
                max_batch,
                ..Self::default()
            }
        }

        fn values(&self, partition: i32) -> Vec<&str> {
            self.log
                .get(&partition)
                .map(|v| v.iter().map(String::as_str).collect())
                .unwrap_or_default()
        }

        fn append(&mut self, partition: i32, records: &[Record]) -> Answer {
            let first = &records[0];
            let size: usize = records
                .iter()
                .map(|r| r.value.as_ref().map_or(0, |v| v.len()))
                .sum();
            let idempotent = first.producer_id >= 0;
            let base = first.sequence;
            let last = base.wrapping_add(records.len() as i32 - 1);
            if idempotent {
                let Some(state) = self.producers.get_mut(&(first.producer_id, partition)) else {
                    return refuse(59);
                };
                if state.recent.contains(&(base, last)) {
                    return Answer::Written {
                        offset: -1,
                        duplicate: true,
                    };
                }
                if base != state.next {
                    return refuse(45);
                }
                if self.counts_refused || size <= self.max_batch {
                    state.next = increment_sequence(state.next, records.len());
                    state.recent.push((base, last));
                }
            }
            if size > self.max_batch {
                return refuse(MESSAGE_TOO_LARGE);
            }
            let log = self.log.entry(partition).or_default();
            let offset = log.len() as i64;
            for r in records {
                log.push(String::from_utf8_lossy(r.value.as_ref().unwrap()).into_owned());
            }
            Answer::Written {
                offset,
                duplicate: false,
            }
        }
    }

    fn refuse(code: i16) -> Answer {
        Answer::Refused {
            code,
            failure: error_failure("producing to t/0", code, None),
        }
    }

    impl Transport for Broker {
        fn produce(&mut self, batches: &[Batch]) -> Vec<Answer> {
            self.produce_calls += 1;
            batches
                .iter()
                .map(|(partition, records)| {
                    // One record batch per partition, as the encoder will make of them.
                    let first = &records[0];
                    for (i, r) in records.iter().enumerate() {
                        assert_eq!(r.producer_id, first.producer_id);
                        assert_eq!(r.offset - first.offset, i as i64);
                        assert_eq!(r.sequence, first.sequence.wrapping_add(i as i32));
                    }
                    if first.producer_id < 0 {
                        assert_eq!(first.sequence, NO_SEQUENCE);
                    }
                    match (!self.faults.is_empty()).then(|| self.faults.remove(0)) {
                        None => self.append(*partition, records),
                        Some(Fault::Refuse(code)) => refuse(code),
                        Some(Fault::AppendAndLose) => {
                            let _ = self.append(*partition, records);
                            Answer::Lost {
                                failure: Failure::retryable("Produce: timed out"),
                                stale: false,
                            }
                        }
                    }
                })
                .collect()
        }

        fn refresh(&mut self) -> Result<(), Failure> {
            self.refreshes += 1;
            Ok(())
        }

        fn init_producer(&mut self) -> Grant {
            self.inits += 1;
            self.next_id += 1;
            for partition in 0..8 {
                self.producers
                    .insert((self.next_id, partition), ProducerState::default());
            }
            Grant::Granted(self.next_id, 0)
        }
    }

    fn values(results: &[RecordResult]) -> Vec<Result<(), FailureKind>> {
        results
            .iter()
            .map(|r| r.as_ref().map(|_| ()).map_err(|f| f.kind))
            .collect()
    }

    fn batch(partition: i32, values: &[&str]) -> Batch {
        (partition, values.iter().map(|v| record(v)).collect())
    }

    #[test]
    fn sequences_wrap_like_kafkas() {
        assert_eq!(increment_sequence(0, 3), 3);
        assert_eq!(increment_sequence(i32::MAX - 2, 2), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX - 2, 3), 0);
        assert_eq!(increment_sequence(i32::MAX, 5), 4);
    }

    #[test]
    fn sequences_continue_across_batches() {
        let mut broker = Broker::new(1000);
        let mut idempotence = Idempotence::Wanted;
        for n in 0..3 {
            let a = format!("a{n}");
            let b = format!("b{n}");
            let results = deliver(
                &[batch(0, &[&a, &b]), batch(1, &[&a])],
                &mut idempotence,
                &mut broker,
            );
            assert_eq!(values(&results[0]), [Ok(()), Ok(())]);
            assert_eq!(values(&results[1]), [Ok(())]);
            assert_eq!(
                results[0][1].as_ref().unwrap().offset,
                Some(2 * n + 1),
                "offsets count on"
            );
        }
        assert_eq!(broker.inits, 1, "one producer id for the session");
        let producer = idempotence.producer().unwrap();
        assert_eq!(
            (producer.next(0), producer.next(1), producer.next(2)),
            (6, 3, 0)
        );
        assert_eq!(broker.values(0), ["a0", "b0", "a1", "b1", "a2", "b2"]);
    }

    #[test]
    fn a_lost_answer_is_resent_once_and_recognised() {
        let mut broker = Broker::new(1000);
        let mut idempotence = Idempotence::Wanted;
        broker.faults.push(Fault::AppendAndLose);
        let results = deliver(&[batch(0, &["a", "b"])], &mut idempotence, &mut broker);
        assert_eq!(values(&results[0]), [Ok(()), Ok(())]);
        assert!(results[0][0].as_ref().unwrap().duplicate);
        assert_eq!(
            broker.refreshes, 1,
            "metadata read again before the second round"
        );
        assert_eq!(broker.values(0), ["a", "b"], "written once");
        // The broker took the batch: the sequences go on from it on the same producer.
        let results = deliver(&[batch(0, &["c"])], &mut idempotence, &mut broker);
        assert_eq!(values(&results[0]), [Ok(())]);
        assert_eq!(broker.inits, 1);
        assert_eq!(broker.values(0), ["a", "b", "c"]);
    }

    #[test]
    fn a_batch_left_in_doubt_gives_the_producer_up() {
        let mut broker = Broker::new(1000);
        let mut idempotence = Idempotence::Wanted;
        broker.faults.push(Fault::AppendAndLose);
        broker.faults.push(Fault::Refuse(7)); // REQUEST_TIMED_OUT on the second round
        let results = deliver(&[batch(0, &["a", "b"])], &mut idempotence, &mut broker);
        assert_eq!(values(&results[0]), [Err(FailureKind::Retryable); 2]);
        assert_eq!(idempotence, Idempotence::Wanted, "producer given up");
        // The retry of the host carries other events: a new producer numbers them from 0, so
        // the broker cannot mistake them for the batch it has.
        let results = deliver(&[batch(0, &["a", "b"])], &mut idempotence, &mut broker);
        assert_eq!(values(&results[0]), [Ok(()), Ok(())]);
        assert_eq!(broker.inits, 2);
        assert_eq!(idempotence.producer().unwrap().next(0), 2);
    }

    #[test]
    fn a_producer_the_broker_lost_is_replaced_and_the_events_retried() {
        for code in [45, 47, 59, 90] {
            let mut broker = Broker::new(1000);
            let mut idempotence = Idempotence::Wanted;
            assert!(deliver(&[batch(0, &["a"])], &mut idempotence, &mut broker)[0][0].is_ok());
            broker.faults.push(Fault::Refuse(code));
            let results = deliver(
                &[batch(0, &["b", "c"]), batch(1, &["d"])],
                &mut idempotence,
                &mut broker,
            );
            assert_eq!(
                values(&results[0]),
                [Err(FailureKind::Retryable); 2],
                "{code}"
            );
            assert_eq!(
                values(&results[1]),
                [Ok(())],
                "the other partition is written"
            );
            assert!(results[0][0]
                .as_ref()
                .unwrap_err()
                .message
                .contains("new producer id"));
            assert_eq!(broker.produce_calls, 2, "not resent with the same producer");
            assert_eq!(idempotence, Idempotence::Wanted);
            let results = deliver(&[batch(0, &["b", "c"])], &mut idempotence, &mut broker);
            assert_eq!(values(&results[0]), [Ok(()), Ok(())]);
            assert_eq!(idempotence.producer().unwrap().id, 2);
            assert_eq!(idempotence.producer().unwrap().next(0), 2, "from 0 again");
            assert_eq!(broker.values(0), ["a", "b", "c"]);
        }
    }

    #[test]
    fn an_oversized_record_fails_alone() {
        for counts_refused in [false, true] {
            let mut broker = Broker::new(10);
            broker.counts_refused = counts_refused;
            let mut idempotence = Idempotence::Wanted;
            assert!(deliver(&[batch(0, &["first"])], &mut idempotence, &mut broker)[0][0].is_ok());
            let big = "x".repeat(11);
            let results = deliver(
                &[batch(0, &["a", &big, "b", "c"]), batch(1, &["d"])],
                &mut idempotence,
                &mut broker,
            );
            assert_eq!(
                values(&results[0]),
                [Ok(()), Err(FailureKind::Permanent), Ok(()), Ok(())],
                "counts_refused: {counts_refused}"
            );
            assert!(results[0][1]
                .as_ref()
                .unwrap_err()
                .message
                .contains("MessageTooLarge"));
            assert_eq!(values(&results[1]), [Ok(())]);
            assert_eq!(
                broker.values(0),
                ["first", "a", "b", "c"],
                "each written once"
            );
            assert_eq!(broker.values(1), ["d"]);
            // The session carries on with sequences the broker agrees with.
            let results = deliver(&[batch(0, &["e"])], &mut idempotence, &mut broker);
            assert_eq!(values(&results[0]), [Ok(())]);
            assert_eq!(broker.values(0), ["first", "a", "b", "c", "e"]);
        }
    }

    #[test]
    fn a_single_oversized_record_is_not_split() {
        let mut broker = Broker::new(10);
        let mut idempotence = Idempotence::Wanted;
        let big = "x".repeat(11);
        let results = deliver(&[batch(0, &[&big])], &mut idempotence, &mut broker);
        assert_eq!(values(&results[0]), [Err(FailureKind::Permanent)]);
        assert_eq!(broker.produce_calls, 1);
    }

    #[test]
    fn a_split_stops_at_a_retryable_failure() {
        let mut broker = Broker::new(10);
        let mut idempotence = Idempotence::Wanted;
        let big = "x".repeat(11);
        broker.faults.push(Fault::Refuse(MESSAGE_TOO_LARGE)); // the whole batch
        broker.faults.push(Fault::Refuse(MESSAGE_TOO_LARGE)); // "a" alone, refused too
        broker.faults.push(Fault::Refuse(6)); // NOT_LEADER_OR_FOLLOWER for "b"
        let results = deliver(
            &[batch(0, &["a", "b", &big])],
            &mut idempotence,
            &mut broker,
        );
        assert_eq!(
            values(&results[0]),
            [
                Err(FailureKind::Permanent),
                Err(FailureKind::Retryable),
                Err(FailureKind::Retryable)
            ]
        );
        assert!(broker.values(0).is_empty());
    }

    #[test]
    fn without_idempotence_nothing_is_numbered_or_resent_after_it_left() {
        let mut broker = Broker::new(10);
        let mut idempotence = Idempotence::Off;
        broker.faults.push(Fault::AppendAndLose);
        let results = deliver(&[batch(0, &["a", "b"])], &mut idempotence, &mut broker);
        assert_eq!(values(&results[0]), [Err(FailureKind::Retryable); 2]);
        assert_eq!(
            broker.produce_calls, 1,
            "a duplicate could not be recognised"
        );
        let big = "x".repeat(11);
        let results = deliver(
            &[batch(0, &["c", &big, "d"])],
            &mut idempotence,
            &mut broker,
        );
        assert_eq!(
            values(&results[0]),
            [Ok(()), Err(FailureKind::Permanent), Ok(())]
        );
        assert_eq!(broker.inits, 0);
        assert_eq!(broker.values(0), ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_batch_that_never_left_or_met_a_stale_connection_is_resent_without_idempotence() {
        struct Flaky(Broker, Vec<Answer>);
        impl Transport for Flaky {
            fn produce(&mut self, batches: &[Batch]) -> Vec<Answer> {
                if self.1.is_empty() {
                    self.0.produce(batches)
                } else {
                    vec![self.1.remove(0)]
                }
            }
            fn refresh(&mut self) -> Result<(), Failure> {
                self.0.refresh()
            }
            fn init_producer(&mut self) -> Grant {
                self.0.init_producer()
            }
        }
        for first in [
            Answer::NotSent(Failure::retryable("no leader")),
            Answer::Lost {
                failure: Failure::retryable("the server closed the connection"),
                stale: true,
            },
        ] {
            let mut flaky = Flaky(Broker::new(100), vec![first]);
            let results = deliver(&[batch(0, &["a"])], &mut Idempotence::Off, &mut flaky);
            assert_eq!(values(&results[0]), [Ok(())]);
            assert_eq!(flaky.0.values(0), ["a"]);
        }
    }

    #[test]
    fn a_cluster_without_producer_ids_is_asked_once() {
        struct NoIds(Broker);
        impl Transport for NoIds {
            fn produce(&mut self, batches: &[Batch]) -> Vec<Answer> {
                self.0.produce(batches)
            }
            fn refresh(&mut self) -> Result<(), Failure> {
                Ok(())
            }
            fn init_producer(&mut self) -> Grant {
                self.0.inits += 1;
                Grant::Refused
            }
        }
        let mut cluster = NoIds(Broker::new(100));
        let mut idempotence = Idempotence::Wanted;
        for _ in 0..2 {
            let results = deliver(&[batch(0, &["a", "b"])], &mut idempotence, &mut cluster);
            assert_eq!(values(&results[0]), [Ok(()), Ok(())]);
        }
        assert_eq!(cluster.0.inits, 1);
        assert_eq!(idempotence, Idempotence::Unavailable);
    }
}
