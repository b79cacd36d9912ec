//! The `kafka` destination: Produce with `acks=all` to one topic, key = event id or a payload
//! field.
//!
//! One call: connect to a bootstrap broker (API versions, SASL), read the topic's metadata, place
//! each event on a partition with Kafka's default partitioner (murmur2 of the key), and send each
//! partition leader one Produce request holding one record batch per partition. With the
//! idempotent producer (the default, where the cluster grants a producer id) a partition whose
//! Produce failed with a retriable error is sent once more within the call with the same producer
//! id and sequence numbers, so a batch that did land is not written twice. Frames, record batches
//! and compression come from `kafka-protocol`.

mod client;
mod partition;
mod scram;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{InitProducerIdRequest, MetadataRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
};
use pushrail_plugin_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{error_failure, Broker, Sasl};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    bootstrap_servers: Vec<String>,
    #[serde(default)]
    tls: bool,
    topic: String,
    /// A top-level payload field, or a JSON pointer (`/customer/id`); `None`: the event id.
    #[serde(default)]
    key_field: Option<String>,
    #[serde(default = "default_compression")]
    compression: String,
    #[serde(default = "yes")]
    idempotent: bool,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_compression() -> String {
    "none".to_owned()
}

fn yes() -> bool {
    true
}

fn default_timeout_ms() -> u64 {
    10_000
}

#[derive(Deserialize)]
struct Plain {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct ScramSecret {
    username: String,
    password: String,
    mechanism: String,
}

/// Versions this client fills in (Produce 13 names topics by id; Metadata 13 is not needed).
const MAX_PRODUCE: i16 = 12;
const MAX_METADATA: i16 = 12;
const MAX_INIT_PRODUCER_ID: i16 = 5;

struct Kafka;

impl Destination for Kafka {
    type Config = Config;

    fn info() -> TypeInfo {
        TypeInfo::new(
            "kafka",
            "Apache Kafka",
            "Produces each event as a record to a Kafka topic (acks=all); the key is the event id or a payload field",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["bootstrap_servers", "topic"],
            "additionalProperties": false,
            "properties": {
                "bootstrap_servers": {
                    "type": "array", "title": "Bootstrap servers", "minItems": 1, "maxItems": 16,
                    "items": { "type": "string", "pattern": "^[^\\s/]+:[0-9]{1,5}$", "maxLength": 260 },
                    "description": "host:port of one or more brokers; the rest of the cluster is found from their metadata."
                },
                "tls": { "type": "boolean", "title": "TLS", "default": false,
                         "description": "TLS to every broker (SSL / SASL_SSL listeners); certificates are verified." },
                "topic": {
                    "type": "string", "title": "Topic", "minLength": 1, "maxLength": 249,
                    "pattern": "^[a-zA-Z0-9._-]+$"
                },
                "key_field": {
                    "type": "string", "title": "Key field", "minLength": 1, "maxLength": 256,
                    "description": "Payload field whose value is the record key: a top-level name (customer_id) or a JSON pointer (/customer/id). Leave out to key by event id. Events without the field are keyed by their id."
                },
                "compression": {
                    "type": "string", "title": "Compression", "enum": ["none", "gzip", "snappy"], "default": "none"
                },
                "idempotent": {
                    "type": "boolean", "title": "Idempotent producer", "default": true,
                    "description": "Ask the cluster for a producer id so that a Produce re-sent within one attempt is not written twice."
                },
                "timeout_ms": {
                    "type": "integer", "title": "Timeout (ms)", "minimum": 1000, "maximum": 60000, "default": 10000,
                    "description": "Bounds connecting, each answer, and the brokers' wait for replication (acks=all)."
                }
            }
        }))
        .credentials(
            &["sasl_plain", "sasl_scram"],
            json!({
                "oneOf": [
                    {
                        "title": "SASL/PLAIN (sasl_plain)",
                        "type": "object", "required": ["username", "password"], "additionalProperties": false,
                        "properties": {
                            "username": { "type": "string", "title": "Username", "minLength": 1 },
                            "password": { "type": "string", "title": "Password", "minLength": 1 }
                        }
                    },
                    {
                        "title": "SASL/SCRAM (sasl_scram)",
                        "type": "object", "required": ["username", "password", "mechanism"], "additionalProperties": false,
                        "properties": {
                            "username": { "type": "string", "title": "Username", "minLength": 1 },
                            "password": { "type": "string", "title": "Password", "minLength": 1 },
                            "mechanism": { "type": "string", "enum": ["SCRAM-SHA-256", "SCRAM-SHA-512"] }
                        }
                    }
                ]
            }),
            false,
        )
        .max_batch_size(100)
    }

    fn validate(config: &Config) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (i, server) in config.bootstrap_servers.iter().enumerate() {
            if let Err(message) = split_host_port(server) {
                errors.push(field(&format!("bootstrap_servers.{i}"), &message));
            }
        }
        if config.topic == "." || config.topic == ".." {
            errors.push(field("topic", "must not be . or .."));
        }
        if compression(&config.compression).is_none() {
            errors.push(field("compression", "must be none, gzip or snappy"));
        }
        if let Some(key) = &config.key_field {
            if key.is_empty() || key == "/" {
                errors.push(field("key_field", "must name a field"));
            }
        }
        errors
    }

    fn deliver(
        config: Config,
        credential: Option<Credential>,
        events: Vec<Event>,
    ) -> DeliveryResult {
        let sasl = sasl(credential.as_ref())?;
        let compression = compression(&config.compression)
            .ok_or_else(|| Failure::permanent("unknown compression"))?;
        let timeout = Duration::from_millis(config.timeout_ms.clamp(1000, 60_000));
        let mut bootstrap = connect_bootstrap(&config, timeout, &sasl)?;
        let mut layout = metadata(&mut bootstrap, &config.topic)?;
        let producer = if config.idempotent {
            init_producer_id(&mut bootstrap)
        } else {
            None
        };

        // Events per partition, in publish order; each partition's records form one batch.
        let mut placed: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
        for event in &events {
            let key = record_key(&config, event);
            let partition =
                layout.partitions[partition::partition_for(&key, layout.partitions.len())];
            let records = placed.entry(partition).or_default();
            records.push(record(event, key, producer, records.len()));
        }
        let mut batches: BTreeMap<i32, Bytes> = BTreeMap::new();
        for (partition, records) in &placed {
            let mut buf = BytesMut::new();
            RecordBatchEncoder::encode(
                &mut buf,
                records.iter(),
                &RecordEncodeOptions {
                    version: 2,
                    compression,
                },
            )
            .map_err(|e| Failure::permanent(format!("encoding the record batch: {e:#}")))?;
            batches.insert(*partition, buf.freeze());
        }

        let mut connections = Connections {
            brokers: vec![bootstrap],
            config: &config,
            timeout,
            sasl: &sasl,
        };
        let mut offsets: BTreeMap<i32, i64> = BTreeMap::new();
        let mut pending: Vec<i32> = batches.keys().copied().collect();
        // One more round within the call only makes sense when the broker can deduplicate it.
        let rounds = if producer.is_some() { 2 } else { 1 };
        let mut last_failure = None;
        for round in 0..rounds {
            if round > 0 {
                layout = metadata(connections.any()?, &config.topic)?;
            }
            let mut failed = Vec::new();
            last_failure = None;
            for (leader, partitions) in by_leader(&layout, &pending) {
                let outcome = match connections.leader(&layout, leader) {
                    Err(failure) => Err(failure),
                    Ok(broker) => {
                        let address = broker.address.clone();
                        let result = produce(broker, &config, timeout, &partitions, &batches);
                        if result.is_err() {
                            // The connection may be broken: a later round dials it again.
                            connections.forget(&address);
                        }
                        result
                    }
                };
                match outcome {
                    Ok(results) => {
                        for (partition, result) in results {
                            match result {
                                Ok(offset) => {
                                    offsets.insert(partition, offset);
                                }
                                Err(failure) => {
                                    failed.push(partition);
                                    last_failure = Some(failure);
                                }
                            }
                        }
                    }
                    Err(failure) => {
                        failed.extend(partitions.iter().copied());
                        last_failure = Some(failure);
                    }
                }
            }
            pending = failed;
            let retry = matches!(&last_failure, Some(f) if f.kind == FailureKind::Retryable);
            if pending.is_empty() || !retry {
                break;
            }
        }
        if let Some(failure) = last_failure {
            if !pending.is_empty() {
                let written = events.len() - pending.iter().map(|p| placed[p].len()).sum::<usize>();
                return Err(Failure {
                    message: format!(
                        "{} ({written} of {} records were written)",
                        failure.message,
                        events.len()
                    ),
                    ..failure
                });
            }
        }
        let where_: Vec<String> = offsets.iter().map(|(p, o)| format!("{p}@{o}")).collect();
        Ok(Delivered {
            status_code: None,
            response_excerpt: Some(format!(
                "{} records written to {} (partition@base offset: {}){}",
                events.len(),
                config.topic,
                where_.join(", "),
                if producer.is_some() {
                    ", idempotent producer"
                } else {
                    ""
                }
            )),
        })
    }
}

fn sasl(credential: Option<&Credential>) -> Result<Sasl, Failure> {
    Ok(match credential {
        None => Sasl::None,
        Some(c) if c.kind == "sasl_plain" => {
            let p: Plain = c.secret()?;
            Sasl::Plain {
                username: p.username,
                password: p.password,
            }
        }
        Some(c) if c.kind == "sasl_scram" => {
            let s: ScramSecret = c.secret()?;
            let mechanism = match s.mechanism.as_str() {
                "SCRAM-SHA-256" => scram::Mechanism::Sha256,
                "SCRAM-SHA-512" => scram::Mechanism::Sha512,
                other => {
                    return Err(Failure::permanent(format!(
                        "unknown SCRAM mechanism {other:?}"
                    )))
                }
            };
            Sasl::Scram {
                mechanism,
                username: s.username,
                password: s.password,
            }
        }
        Some(c) => {
            return Err(Failure::permanent(format!(
                "credential kind {} is not supported",
                c.kind
            )))
        }
    })
}

fn compression(name: &str) -> Option<Compression> {
    match name {
        "none" => Some(Compression::None),
        "gzip" => Some(Compression::Gzip),
        "snappy" => Some(Compression::Snappy),
        _ => None,
    }
}

fn split_host_port(server: &str) -> Result<(String, u16), String> {
    let (host, port) = server
        .rsplit_once(':')
        .ok_or_else(|| "must be host:port".to_owned())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    if host.is_empty() || port == 0 {
        return Err("must be host:port".into());
    }
    Ok((host.to_owned(), port))
}

/// The first bootstrap server that answers; a refused login ends the search at once.
fn connect_bootstrap(config: &Config, timeout: Duration, sasl: &Sasl) -> Result<Broker, Failure> {
    let mut last = None;
    for server in &config.bootstrap_servers {
        let (host, port) =
            split_host_port(server).map_err(|e| Failure::permanent(format!("{server}: {e}")))?;
        match Broker::connect(&host, port, config.tls, timeout, sasl) {
            Ok(broker) => return Ok(broker),
            Err(failure) if failure.kind == FailureKind::Permanent => return Err(failure),
            Err(failure) => last = Some(failure),
        }
    }
    Err(last.unwrap_or_else(|| Failure::permanent("no bootstrap servers")))
}

/// Partitions of the topic (by index) and where their leaders are.
struct Layout {
    /// Partition ids in order: `partitions[murmur2 % len]` is where a key goes.
    partitions: Vec<i32>,
    leaders: BTreeMap<i32, i32>,
    brokers: BTreeMap<i32, (String, u16)>,
}

fn metadata(broker: &mut Broker, topic: &str) -> Result<Layout, Failure> {
    let version = broker.version::<MetadataRequest>(MAX_METADATA)?;
    let mut request =
        MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(topic.to_owned()))))]));
    if version >= 4 {
        request.allow_auto_topic_creation = false;
    }
    let response = broker.call(&request, version)?;
    let Some(found) = response.topics.first() else {
        return Err(Failure::retryable(format!("no metadata for topic {topic}")));
    };
    if found.error_code != 0 {
        return Err(error_failure(
            &format!("topic {topic}"),
            found.error_code,
            None,
        ));
    }
    let brokers = response
        .brokers
        .iter()
        .map(|b| {
            (
                b.node_id.0,
                (
                    b.host.as_str().to_owned(),
                    u16::try_from(b.port).unwrap_or(0),
                ),
            )
        })
        .collect();
    let mut partitions: Vec<i32> = Vec::new();
    let mut leaders = BTreeMap::new();
    for p in &found.partitions {
        partitions.push(p.partition_index);
        if p.error_code == 0 && p.leader_id.0 >= 0 {
            leaders.insert(p.partition_index, p.leader_id.0);
        }
    }
    partitions.sort_unstable();
    if partitions.is_empty() {
        return Err(Failure::retryable(format!(
            "topic {topic} has no partitions"
        )));
    }
    Ok(Layout {
        partitions,
        leaders,
        brokers,
    })
}

/// A producer id and epoch from the cluster, or `None` where it grants none (the batch is then
/// written without sequence numbers).
fn init_producer_id(broker: &mut Broker) -> Option<(i64, i16)> {
    let version = broker.try_version::<InitProducerIdRequest>(MAX_INIT_PRODUCER_ID)?;
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1);
    match broker.call(&request, version) {
        Ok(r) if r.error_code == 0 && r.producer_id.0 >= 0 => {
            Some((r.producer_id.0, r.producer_epoch))
        }
        Ok(r) => {
            log::info(&format!(
                "no idempotent producer id: {}",
                client::describe(r.error_code)
            ));
            None
        }
        Err(e) => {
            log::info(&format!("no idempotent producer id: {}", e.message));
            None
        }
    }
}

/// The record key: the configured payload field when the event has it, else the event id.
fn record_key(config: &Config, event: &Event) -> Vec<u8> {
    let from_field = config.key_field.as_deref().and_then(|field| {
        let payload: Value = serde_json::from_slice(&event.payload).ok()?;
        let value = if field.starts_with('/') {
            payload.pointer(field)?
        } else {
            payload.get(field)?
        };
        match value {
            Value::Null => None,
            Value::String(s) => Some(s.as_bytes().to_vec()),
            other => Some(other.to_string().into_bytes()),
        }
    });
    from_field.unwrap_or_else(|| event.id.as_bytes().to_vec())
}

fn record(event: &Event, key: Vec<u8>, producer: Option<(i64, i16)>, index: usize) -> Record {
    let mut headers: IndexMap<StrBytes, Option<Bytes>> = IndexMap::new();
    headers.insert(
        StrBytes::from_static_str("pushrail-event-id"),
        Some(Bytes::from(event.id.clone())),
    );
    headers.insert(
        StrBytes::from_static_str("pushrail-event-type"),
        Some(Bytes::from(event.event_type.clone())),
    );
    headers.insert(
        StrBytes::from_static_str("content-type"),
        Some(Bytes::from_static(b"application/json")),
    );
    for (name, value) in &event.attributes {
        headers.insert(
            StrBytes::from_string(name.clone()),
            Some(Bytes::from(value.clone())),
        );
    }
    let (producer_id, producer_epoch, sequence) = match producer {
        // A fresh producer id starts every partition's sequence at 0.
        Some((id, epoch)) => (id, epoch, index as i32),
        None => (NO_PRODUCER_ID, NO_PRODUCER_EPOCH, NO_SEQUENCE),
    };
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: index as i64,
        sequence,
        timestamp: i64::try_from(event.occurred_at).unwrap_or(i64::MAX),
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from(event.payload.clone())),
        headers,
    }
}

/// Pending partitions grouped by their leader's node id (`-1`: no leader known).
fn by_leader(layout: &Layout, pending: &[i32]) -> BTreeMap<i32, Vec<i32>> {
    let mut groups: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for p in pending {
        groups
            .entry(*layout.leaders.get(p).unwrap_or(&-1))
            .or_default()
            .push(*p);
    }
    groups
}

/// Open broker connections, reused by address.
struct Connections<'a> {
    brokers: Vec<Broker>,
    config: &'a Config,
    timeout: Duration,
    sasl: &'a Sasl,
}

impl Connections<'_> {
    /// A connection to any broker, for metadata: an open one, or the bootstrap servers again.
    fn any(&mut self) -> Result<&mut Broker, Failure> {
        if self.brokers.is_empty() {
            let broker = connect_bootstrap(self.config, self.timeout, self.sasl)?;
            self.brokers.push(broker);
        }
        Ok(&mut self.brokers[0])
    }

    fn forget(&mut self, address: &str) {
        self.brokers.retain(|b| b.address != address);
    }

    fn leader(&mut self, layout: &Layout, node: i32) -> Result<&mut Broker, Failure> {
        let Some((host, port)) = layout.brokers.get(&node) else {
            return Err(Failure::retryable(format!(
                "{}: a partition has no leader right now (LEADER_NOT_AVAILABLE)",
                self.config.topic
            )));
        };
        let address = format!("{host}:{port}");
        if let Some(i) = self.brokers.iter().position(|b| b.address == address) {
            return Ok(&mut self.brokers[i]);
        }
        let broker = Broker::connect(host, *port, self.config.tls, self.timeout, self.sasl)?;
        self.brokers.push(broker);
        Ok(self.brokers.last_mut().expect("just pushed"))
    }
}

type PartitionResults = Vec<(i32, Result<i64, Failure>)>;

/// One Produce request (acks=all) for these partitions; a result per partition.
fn produce(
    broker: &mut Broker,
    config: &Config,
    timeout: Duration,
    partitions: &[i32],
    batches: &BTreeMap<i32, Bytes>,
) -> Result<PartitionResults, Failure> {
    let version = broker.version::<ProduceRequest>(MAX_PRODUCE)?;
    let data = partitions
        .iter()
        .map(|p| {
            PartitionProduceData::default()
                .with_index(*p)
                .with_records(Some(batches[p].clone()))
        })
        .collect();
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX))
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(config.topic.clone())))
            .with_partition_data(data)]);
    let response = broker.call(&request, version)?;
    let mut results: PartitionResults = Vec::new();
    for topic in &response.responses {
        for p in &topic.partition_responses {
            let result = match p.error_code {
                0 => Ok(p.base_offset),
                // The broker already has this batch from this producer: it landed before.
                46 => Ok(p.base_offset),
                code => Err(error_failure(
                    &format!("producing to {}/{}", config.topic, p.index),
                    code,
                    p.error_message.as_ref().map(|m| m.as_str()),
                )),
            };
            results.push((p.index, result));
        }
    }
    for p in partitions {
        if !results.iter().any(|(q, _)| q == p) {
            results.push((
                *p,
                Err(Failure::retryable(format!(
                    "the broker did not answer for partition {p}"
                ))),
            ));
        }
    }
    Ok(results)
}

fn field(name: &str, message: &str) -> FieldError {
    FieldError {
        field: name.to_owned(),
        message: message.to_owned(),
    }
}

export_destination!(Kafka);

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    fn event(id: &str, payload: &str) -> Event {
        Event {
            id: id.into(),
            event_type: "order.created".into(),
            occurred_at: 1_700_000_000_123,
            payload: payload.as_bytes().to_vec(),
            attributes: Vec::new(),
        }
    }

    fn config(extra: &str) -> Config {
        serde_json::from_str(&format!(
            r#"{{"bootstrap_servers":["127.0.0.1:9092"],"topic":"t"{extra}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn keys_come_from_the_payload_or_the_event_id() {
        let e = event(
            "evt_1",
            r#"{"customer":{"id":42},"region":"eu","none":null}"#,
        );
        assert_eq!(record_key(&config(""), &e), b"evt_1");
        assert_eq!(record_key(&config(r#","key_field":"region""#), &e), b"eu");
        assert_eq!(
            record_key(&config(r#","key_field":"/customer/id""#), &e),
            b"42"
        );
        assert_eq!(
            record_key(&config(r#","key_field":"missing""#), &e),
            b"evt_1"
        );
        assert_eq!(record_key(&config(r#","key_field":"none""#), &e), b"evt_1");
    }

    #[test]
    fn record_batches_round_trip_with_producer_sequences() {
        let events = [event("a", r#"{"n":1}"#), event("b", r#"{"n":2}"#)];
        let records: Vec<Record> = events
            .iter()
            .enumerate()
            .map(|(i, e)| record(e, e.id.as_bytes().to_vec(), Some((7, 0)), i))
            .collect();
        for compression in [Compression::None, Compression::Gzip, Compression::Snappy] {
            let mut buf = BytesMut::new();
            RecordBatchEncoder::encode(
                &mut buf,
                records.iter(),
                &RecordEncodeOptions {
                    version: 2,
                    compression,
                },
            )
            .unwrap();
            let mut bytes = buf.freeze();
            let decoded = RecordBatchDecoder::decode(&mut bytes).unwrap();
            assert_eq!(decoded.compression, compression);
            let got = &decoded.records;
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].producer_id, 7);
            assert_eq!((got[0].sequence, got[1].sequence), (0, 1));
            assert_eq!(got[1].key.as_deref(), Some(&b"b"[..]));
            assert_eq!(got[1].value.as_deref(), Some(&br#"{"n":2}"#[..]));
            assert_eq!(got[0].timestamp, 1_700_000_000_123);
            assert_eq!(
                got[0].headers[&StrBytes::from_static_str("pushrail-event-id")].as_deref(),
                Some(&b"a"[..])
            );
        }
    }

    #[test]
    fn config_checks() {
        assert!(Kafka::validate(&config("")).is_empty());
        let bad: Config = serde_json::from_str(
            r#"{"bootstrap_servers":["nohost","h:99999","[::1]:9092"],"topic":"..","compression":"lz4"}"#,
        )
        .unwrap();
        let fields: Vec<String> = Kafka::validate(&bad).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "bootstrap_servers.0",
                "bootstrap_servers.1",
                "topic",
                "compression"
            ]
        );
        assert_eq!(
            split_host_port("[::1]:9092").unwrap(),
            ("::1".to_owned(), 9092)
        );
    }

    #[test]
    fn kafka_errors_follow_kafkas_retriable_flag() {
        assert_eq!(error_failure("x", 3, None).kind, FailureKind::Retryable); // UNKNOWN_TOPIC_OR_PARTITION
        assert_eq!(error_failure("x", 6, None).kind, FailureKind::Retryable); // NOT_LEADER_OR_FOLLOWER
        assert_eq!(error_failure("x", 58, None).kind, FailureKind::Permanent); // SASL_AUTHENTICATION_FAILED
        assert_eq!(error_failure("x", 29, None).kind, FailureKind::Permanent); // TOPIC_AUTHORIZATION_FAILED
        assert_eq!(error_failure("x", 10, None).kind, FailureKind::Permanent); // MESSAGE_TOO_LARGE
        assert!(error_failure("x", 58, Some("bad password"))
            .message
            .contains("bad password"));
    }
}
