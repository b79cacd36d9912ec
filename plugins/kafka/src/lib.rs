//! The `kafka` destination: Produce with `acks=all` to one topic, key = event id or a payload
//! field.
//!
//! The session keeps what a producer keeps: its broker connections (API versions negotiated,
//! SASL done), the topic's metadata (partitions and leaders, read again after a leadership error
//! or five minutes) and, with the idempotent producer, its producer id, epoch and the sequence
//! number each partition is at. Each batch places its events on partitions with Kafka's default
//! partitioner (murmur2 of the key) and sends each partition leader one Produce request holding
//! one record batch per partition; each partition's answer answers for its events. Frames,
//! record batches and compression come from `kafka-protocol`; the delivery rules (sequences,
//! the retry within a call, splitting a batch that is too large) are in `producer`.

mod client;
mod partition;
mod producer;
mod scram;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    InitProducerIdRequest, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
};
use pushrail_plugin_sdk::prelude::*;
use pushrail_plugin_sdk::settings;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{error_failure, Broker, Sasl};
use crate::producer::{Answer, Batch, Grant, Idempotence, Transport, Written};

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
    #[serde(default = "settings::default_timeout_ms")]
    timeout_ms: u64,
}

fn default_compression() -> String {
    "none".to_owned()
}

fn yes() -> bool {
    true
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
/// Metadata older than this is read again before a batch (Kafka's `metadata.max.age.ms`), so
/// partitions added to the topic are found.
const METADATA_MAX_AGE: Duration = Duration::from_secs(300);

/// The session of one destination: its settings and what a producer keeps between batches.
struct Kafka {
    config: Config,
    sasl: Sasl,
    compression: Compression,
    timeout: Duration,
    /// Open broker connections, by address.
    brokers: Vec<Broker>,
    /// The topic's partitions and leaders; `None` until read, and after a failure that may
    /// mean they moved.
    layout: Option<Layout>,
    idempotence: Idempotence,
}

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
                "timeout_ms": timeout_schema()
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
                errors.push(FieldError::new(format!("bootstrap_servers.{i}"), message));
            }
        }
        if config.topic == "." || config.topic == ".." {
            errors.push(FieldError::new("topic", "must not be . or .."));
        }
        if compression(&config.compression).is_none() {
            errors.push(FieldError::new(
                "compression",
                "must be none, gzip or snappy",
            ));
        }
        if let Some(key) = &config.key_field {
            if key.is_empty() || key == "/" {
                errors.push(FieldError::new("key_field", "must name a field"));
            }
        }
        errors
    }

    fn open(config: Config, credential: Option<Credential>) -> Result<Self, Failure> {
        let sasl = sasl(credential.as_ref())?;
        let compression = compression(&config.compression)
            .ok_or_else(|| Failure::permanent("unknown compression"))?;
        let idempotence = if config.idempotent {
            Idempotence::Wanted
        } else {
            Idempotence::Off
        };
        Ok(Self {
            timeout: settings::timeout(config.timeout_ms),
            config,
            sasl,
            compression,
            brokers: Vec::new(),
            layout: None,
            idempotence,
        })
    }

    fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
        if events.is_empty() {
            return Vec::new();
        }
        for broker in &mut self.brokers {
            broker.reused = true;
        }
        let Self {
            config,
            sasl,
            compression,
            timeout,
            brokers,
            layout,
            idempotence,
        } = self;
        let mut cluster = Cluster {
            config,
            sasl,
            compression: *compression,
            timeout: *timeout,
            brokers,
            layout,
        };
        let partitions = match cluster.partitions() {
            Ok(partitions) => partitions,
            Err(failure) => return all(events, Err(failure)),
        };

        // Events per partition, in publish order; each partition's records form one batch.
        let mut placed: BTreeMap<i32, (Vec<usize>, Vec<Record>)> = BTreeMap::new();
        for (i, event) in events.iter().enumerate() {
            let key = record_key(config, event);
            let partition = partitions[partition::partition_for(&key, partitions.len())];
            let (indices, records) = placed.entry(partition).or_default();
            indices.push(i);
            records.push(record(event, key));
        }
        let (indices, batches): (Vec<Vec<usize>>, Vec<Batch>) = placed
            .into_iter()
            .map(|(partition, (indices, records))| (indices, (partition, records)))
            .unzip();
        let answers = producer::deliver(&batches, idempotence, &mut cluster);

        let mut results: Vec<DeliveryResult> =
            all(events, Err(Failure::retryable("the record was not sent")));
        let mut in_doubt = false;
        for (indices, answers) in indices.into_iter().zip(answers) {
            for (i, answer) in indices.into_iter().zip(answers) {
                in_doubt |= matches!(&answer, Err(f) if f.kind == FailureKind::Retryable);
                results[i] = answer.map(|written| Delivered {
                    status_code: None,
                    response_excerpt: Some(excerpt(&config.topic, &written)),
                });
            }
        }
        if in_doubt {
            // Leaders may have moved or partitions gone: the next batch reads the metadata again.
            *cluster.layout = None;
        }
        results
    }
}

/// What the delivery log says about one record written.
fn excerpt(topic: &str, written: &Written) -> String {
    let at = match written.offset {
        Some(offset) => format!("partition@offset: {}@{offset}", written.partition),
        None => format!("partition {}", written.partition),
    };
    format!(
        "written to {topic} ({at}){}{}",
        if written.duplicate {
            ", already there (duplicate sequence number)"
        } else {
            ""
        },
        if written.idempotent {
            ", idempotent producer"
        } else {
            ""
        }
    )
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

/// The shared timeout setting, with what it bounds here.
fn timeout_schema() -> Value {
    let mut schema = settings::timeout_schema();
    schema["description"] =
        "Bounds connecting, each answer, and the brokers' wait for replication (acks=all).".into();
    schema
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
    read_at: Instant,
}

fn metadata_request(topic: &str, version: i16) -> MetadataRequest {
    let mut request =
        MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(topic.to_owned()))))]));
    if version >= 4 {
        request.allow_auto_topic_creation = false;
    }
    request
}

fn layout(response: &MetadataResponse, topic: &str) -> Result<Layout, Failure> {
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
        read_at: Instant::now(),
    })
}

/// The session's brokers during one batch: the connections and metadata it keeps.
struct Cluster<'a> {
    config: &'a Config,
    sasl: &'a Sasl,
    compression: Compression,
    timeout: Duration,
    brokers: &'a mut Vec<Broker>,
    layout: &'a mut Option<Layout>,
}

impl Cluster<'_> {
    /// The topic's partition ids, from the kept metadata while it is fresh.
    fn partitions(&mut self) -> Result<Vec<i32>, Failure> {
        match self.layout.as_ref() {
            Some(layout) if layout.read_at.elapsed() < METADATA_MAX_AGE => {
                Ok(layout.partitions.clone())
            }
            _ => {
                self.read_metadata()?;
                Ok(self
                    .layout
                    .as_ref()
                    .map(|l| l.partitions.clone())
                    .unwrap_or_default())
            }
        }
    }

    fn read_metadata(&mut self) -> Result<(), Failure> {
        let topic = self.config.topic.as_str();
        let response = self.with_any(|broker| {
            let version = broker.version::<MetadataRequest>(MAX_METADATA)?;
            broker.call(&metadata_request(topic, version), version)
        });
        match response.and_then(|r| layout(&r, topic)) {
            Ok(layout) => {
                *self.layout = Some(layout);
                Ok(())
            }
            Err(failure) => {
                *self.layout = None;
                Err(failure)
            }
        }
    }

    /// Runs `call` on a connection to any broker (for metadata and producer ids): a kept one,
    /// or the first bootstrap server that answers. A kept connection that fails retryably may
    /// have been closed while idle: the call is made once more on a fresh one.
    fn with_any<T>(
        &mut self,
        mut call: impl FnMut(&mut Broker) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        if let Some(broker) = self.brokers.first_mut() {
            let stale = broker.reused;
            match call(broker) {
                Ok(value) => return Ok(value),
                Err(failure) => {
                    self.brokers.remove(0);
                    if !(stale && failure.kind == FailureKind::Retryable) {
                        return Err(failure);
                    }
                }
            }
        }
        let mut broker = connect_bootstrap(self.config, self.timeout, self.sasl)?;
        let value = call(&mut broker)?;
        self.brokers.insert(0, broker);
        Ok(value)
    }

    /// The kept connection to `host:port`, or a new one.
    fn connection(&mut self, host: &str, port: u16) -> Result<&mut Broker, Failure> {
        let address = format!("{host}:{port}");
        if let Some(i) = self.brokers.iter().position(|b| b.address == address) {
            return Ok(&mut self.brokers[i]);
        }
        let broker = Broker::connect(host, port, self.config.tls, self.timeout, self.sasl)?;
        self.brokers.push(broker);
        Ok(self.brokers.last_mut().expect("just pushed"))
    }

    fn encode(&self, records: &[Record]) -> Result<Bytes, Failure> {
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression: self.compression,
            },
        )
        .map_err(|e| Failure::permanent(format!("encoding the record batch: {e:#}")))?;
        Ok(buf.freeze())
    }
}

impl Transport for Cluster<'_> {
    fn produce(&mut self, batches: &[Batch]) -> Vec<Answer> {
        let topic = self.config.topic.clone();
        // Batches by their partition's leader (`None`: no leader known right now).
        let mut by_leader: BTreeMap<Option<(String, u16)>, Vec<usize>> = BTreeMap::new();
        for (i, (partition, _)) in batches.iter().enumerate() {
            let leader = self.layout.as_ref().and_then(|layout| {
                let node = layout.leaders.get(partition)?;
                layout.brokers.get(node).cloned()
            });
            by_leader.entry(leader).or_default().push(i);
        }
        let mut answers: Vec<Option<Answer>> = batches.iter().map(|_| None).collect();
        for (leader, members) in by_leader {
            let Some((host, port)) = leader else {
                for i in members {
                    answers[i] = Some(Answer::NotSent(Failure::retryable(format!(
                        "{topic}: a partition has no leader right now (LEADER_NOT_AVAILABLE)"
                    ))));
                }
                continue;
            };
            let mut data = Vec::new();
            let mut sent = Vec::new();
            for i in members {
                let (partition, records) = &batches[i];
                match self.encode(records) {
                    Ok(bytes) => {
                        data.push(
                            PartitionProduceData::default()
                                .with_index(*partition)
                                .with_records(Some(bytes)),
                        );
                        sent.push(i);
                    }
                    Err(failure) => answers[i] = Some(Answer::NotSent(failure)),
                }
            }
            if sent.is_empty() {
                continue;
            }
            let timeout = self.timeout;
            let broker = match self.connection(&host, port) {
                Ok(broker) => broker,
                Err(failure) => {
                    for i in sent {
                        answers[i] = Some(Answer::NotSent(failure.clone()));
                    }
                    continue;
                }
            };
            let stale = broker.reused;
            match produce(broker, &topic, timeout, data) {
                Err(failure) => {
                    // The connection may be broken: the next use dials it again.
                    let address = broker.address.clone();
                    self.brokers.retain(|b| b.address != address);
                    for i in sent {
                        answers[i] = Some(Answer::Lost {
                            failure: failure.clone(),
                            stale,
                        });
                    }
                }
                Ok(response) => {
                    for i in sent {
                        answers[i] = Some(partition_answer(&response, &topic, batches[i].0));
                    }
                }
            }
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Answer::NotSent(Failure::retryable("not sent"))))
            .collect()
    }

    fn refresh(&mut self) -> Result<(), Failure> {
        self.read_metadata()
    }

    fn init_producer(&mut self) -> Grant {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1);
        let response = self.with_any(|broker| {
            match broker.try_version::<InitProducerIdRequest>(MAX_INIT_PRODUCER_ID) {
                Some(version) => broker.call(&request, version).map(Some),
                None => Ok(None),
            }
        });
        match response {
            Ok(Some(r)) if r.error_code == 0 && r.producer_id.0 >= 0 => {
                Grant::Granted(r.producer_id.0, r.producer_epoch)
            }
            Ok(Some(r)) => {
                log::info(&format!(
                    "no idempotent producer id: {}",
                    client::describe(r.error_code)
                ));
                match ResponseError::try_from_code(r.error_code) {
                    Some(e) if e.is_retriable() => Grant::NotNow,
                    _ => Grant::Refused,
                }
            }
            Ok(None) => {
                log::info("no idempotent producer id: the broker does not offer InitProducerId");
                Grant::Refused
            }
            Err(e) => {
                log::info(&format!("no idempotent producer id: {}", e.message));
                Grant::NotNow
            }
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

/// The record of one event; the producer fields, offset and sequence are filled in when its
/// batch is sent.
fn record(event: &Event, key: Vec<u8>) -> Record {
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
        timestamp: i64::try_from(event.occurred_at).unwrap_or(i64::MAX),
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from(event.payload.clone())),
        headers,
    }
}

/// One Produce request (acks=all) with these partitions' batches.
fn produce(
    broker: &mut Broker,
    topic: &str,
    timeout: Duration,
    data: Vec<PartitionProduceData>,
) -> Result<ProduceResponse, Failure> {
    let version = broker.version::<ProduceRequest>(MAX_PRODUCE)?;
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX))
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(data)]);
    broker.call(&request, version)
}

/// The broker's answer for one partition of a Produce.
fn partition_answer(response: &ProduceResponse, topic: &str, partition: i32) -> Answer {
    let found = response
        .responses
        .iter()
        .flat_map(|t| t.partition_responses.iter())
        .find(|p| p.index == partition);
    let Some(p) = found else {
        return Answer::Lost {
            failure: Failure::retryable(format!(
                "the broker did not answer for partition {partition}"
            )),
            stale: false,
        };
    };
    match p.error_code {
        0 => Answer::Written {
            offset: p.base_offset,
            duplicate: false,
        },
        // The broker already has this batch from this producer: it landed before.
        producer::DUPLICATE_SEQUENCE_NUMBER => Answer::Written {
            offset: p.base_offset,
            duplicate: true,
        },
        code => Answer::Refused {
            code,
            failure: error_failure(
                &format!("producing to {topic}/{partition}"),
                code,
                p.error_message.as_ref().map(|m| m.as_str()),
            ),
        },
    }
}

export_destination!(Kafka);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::Producer;
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

    fn encode(records: &[Record], compression: Compression) -> Bytes {
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
        buf.freeze()
    }

    #[test]
    fn record_batches_round_trip_with_producer_sequences() {
        let events = [event("a", r#"{"n":1}"#), event("b", r#"{"n":2}"#)];
        let records: Vec<Record> = events
            .iter()
            .map(|e| record(e, e.id.as_bytes().to_vec()))
            .collect();
        let mut producer = Producer::new(7, 0);
        producer.advance(3, 5);
        let idempotence = Idempotence::Granted(producer);
        let stamped = idempotence.stamp(3, &records.iter().collect::<Vec<_>>());
        for compression in [Compression::None, Compression::Gzip, Compression::Snappy] {
            let bytes = encode(&stamped, compression);
            let info = RecordBatchDecoder::decode_batch_info(&mut bytes.clone()).unwrap();
            assert_eq!(info.len(), 1, "one batch");
            assert_eq!((info[0].producer_id, info[0].base_sequence), (7, 5));
            let decoded = RecordBatchDecoder::decode(&mut bytes.clone()).unwrap();
            assert_eq!(decoded.compression, compression);
            let got = &decoded.records;
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].producer_id, 7);
            assert_eq!((got[0].sequence, got[1].sequence), (5, 6));
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
    fn records_without_a_producer_are_one_batch_too() {
        let events = [event("a", "{}"), event("b", "{}"), event("c", "{}")];
        let records: Vec<Record> = events
            .iter()
            .map(|e| record(e, e.id.as_bytes().to_vec()))
            .collect();
        for idempotence in [Idempotence::Off, Idempotence::Unavailable] {
            let stamped = idempotence.stamp(0, &records.iter().collect::<Vec<_>>());
            let info =
                RecordBatchDecoder::decode_batch_info(&mut encode(&stamped, Compression::None))
                    .unwrap();
            // A Produce carries one record batch per partition (brokers refuse more).
            assert_eq!(info.len(), 1);
            assert_eq!(info[0].record_count, 3);
            assert_eq!(
                (
                    info[0].producer_id,
                    info[0].producer_epoch,
                    info[0].base_sequence
                ),
                (NO_PRODUCER_ID, NO_PRODUCER_EPOCH, NO_SEQUENCE)
            );
        }
    }

    #[test]
    fn excerpts_say_where_each_record_went() {
        let mut written = Written {
            partition: 2,
            offset: Some(41),
            duplicate: false,
            idempotent: true,
        };
        assert_eq!(
            excerpt("orders", &written),
            "written to orders (partition@offset: 2@41), idempotent producer"
        );
        written.offset = None;
        written.duplicate = true;
        written.idempotent = false;
        assert_eq!(
            excerpt("orders", &written),
            "written to orders (partition 2), already there (duplicate sequence number)"
        );
    }

    #[test]
    fn the_timeout_schema_keeps_its_description() {
        let described = pushrail_plugin_sdk::glue::describe::<Kafka>();
        let schema: Value = serde_json::from_str(&described.config_schema).unwrap();
        let timeout = &schema["properties"]["timeout_ms"];
        assert_eq!(timeout["maximum"], 60_000);
        assert!(timeout["description"]
            .as_str()
            .unwrap()
            .contains("acks=all"));
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
