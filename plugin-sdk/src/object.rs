//! Batches written as files: one NDJSON object per batch and prefix in a bucket or container
//! (`s3`, `gcs`, `azure_blob`). The layout is the same for every store, so the same events land
//! under the same names wherever they go:
//!
//! - the prefix is a [`Template`] the customer writes; without a `{{time.*}}` placeholder,
//!   Hive-style hour partitions of the event time ([`DEFAULT_PARTITIONS`]) follow it;
//! - the events of a batch are grouped by their rendered prefix, in batch order, and cut at
//!   [`MAX_EVENTS`] events and [`MAX_OBJECT_BYTES`] bytes of NDJSON;
//! - an object's own name ([`name`]) is derived from its events, so a retried batch writes the
//!   object it wrote before instead of adding one;
//! - its bytes ([`encode`]) are the records' lines, gzip-compressed by default.
//!
//! A plugin keeps what is its store's own: its rules for a name (`check_name`), the request that
//! writes one object, and what the store's answer means.
//!
//! ```ignore
//! let layout = object::Layout {
//!     field: "key_prefix",
//!     object: "object",
//!     prefix: object::prefix_template(&config.key_prefix, MAX_KEY_PREFIX_CHARS, check_key)?,
//!     compression: config.compression,
//!     check_name: check_key,
//! };
//!
//! fn deliver(&mut self, events: &[Event]) -> Vec<DeliveryResult> {
//!     let mut plan = self.layout.plan(events, |object, body| self.request(&object.name, body));
//!     let requests = std::mem::take(&mut plan.requests);
//!     let in_flight = requests.len();
//!     let answers = http::send_all(requests, in_flight);
//!     plan.finish(answers, |response, object| self.outcome(response, object))
//! }
//! ```

use std::collections::HashMap;
use std::io::Write as _;

use flate2::write::GzEncoder;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::template::Template;
use crate::{batch, http, record, DeliveryResult, Event, Failure};

/// Events in one batch (the type's `max_batch_size`), and so at most in one object.
pub const MAX_EVENTS: usize = 500;
/// Bytes of NDJSON (before compression) in one object. The records of one prefix beyond it go to
/// further objects. It keeps every body, compressed or not, well under the host's 16 MiB cap on a
/// request, and the batch within a plugin's memory.
pub const MAX_OBJECT_BYTES: usize = 8 * 1024 * 1024;
/// What follows a prefix that places no `{{time.*}}` itself: Hive-style partitions of the event
/// time (UTC), which Athena, Glue, BigQuery external tables, Synapse, Databricks, Spark and Trino
/// read as columns.
pub const DEFAULT_PARTITIONS: &str =
    "year={{time.year}}/month={{time.month}}/day={{time.day}}/hour={{time.hour}}/";
/// Hex digits of the SHA-256 of the ids kept in an object's name (128 bits).
const NAME_HASH_CHARS: usize = 32;

/// How an object's NDJSON is stored: the `compression` field of each type's config.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    None,
}

impl Compression {
    /// The end of every object's name.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => ".ndjson.gz",
            Compression::None => ".ndjson",
        }
    }

    /// A gzip object is stored as the `.gz` file it is (`application/gzip`, no
    /// `Content-Encoding`), so every client downloads the bytes its name promises: with
    /// `Content-Encoding: gzip`, browsers and HTTP libraries would unpack it on the way, and
    /// Cloud Storage would decompress it for clients that do not ask for gzip (decompressive
    /// transcoding).
    pub fn content_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/gzip",
            Compression::None => "application/x-ndjson",
        }
    }
}

/// The template of every object's prefix: `prefix` as given when it places the event time
/// (`{{time.*}}`) itself; otherwise `prefix`, a `/` when it is not empty and does not end with
/// one, and [`DEFAULT_PARTITIONS`]. Or why `prefix` cannot be one: not a template, over
/// `max_chars` characters, or text around its placeholders that `check_name` (the store's rules
/// for a full name) refuses.
pub fn prefix_template(
    prefix: &str,
    max_chars: usize,
    check_name: impl Fn(&str) -> Result<(), String>,
) -> Result<Template, String> {
    Template::parse(prefix).map_err(|e| e.0)?;
    if prefix.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    // The text around the placeholders must already make a good name.
    check_name(&format!("{}name", fill_placeholders(prefix, "x")))?;
    if placeholders(prefix)
        .iter()
        .any(|name| name.starts_with("time."))
    {
        return Template::parse(prefix).map_err(|e| e.0);
    }
    let mut text = prefix.to_owned();
    if !text.is_empty() && !text.ends_with('/') {
        text.push('/');
    }
    text.push_str(DEFAULT_PARTITIONS);
    Template::parse(&text).map_err(|e| e.0)
}

/// The names inside each `{{ }}` of `text`, trimmed, found the way [`Template::parse`] finds them.
fn placeholders(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        names.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    names
}

/// `text` with each placeholder replaced by `with`.
fn fill_placeholders(text: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        out.push_str(with);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// An object's own name (after its prefix): the time of its first event (`20260307T090500Z`),
/// the first 32 hex digits of the SHA-256 of its event ids in order (each preceded by its length,
/// so no two lists hash alike), and the extension. The same events in the same order always make
/// the same name, in every store; every name has the same length.
pub fn name<'a>(
    ids: impl IntoIterator<Item = &'a str>,
    first_occurred_at: u64,
    compression: Compression,
) -> String {
    let mut hash = Sha256::new();
    for id in ids {
        hash.update((id.len() as u64).to_be_bytes());
        hash.update(id.as_bytes());
    }
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}{}",
        compact_time(first_occurred_at),
        &hex[..NAME_HASH_CHARS],
        compression.extension()
    )
}

/// Milliseconds since the epoch as `YYYYMMDDTHHMMSSZ` (UTC).
fn compact_time(ms: u64) -> String {
    match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) {
        Ok(t) => format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        // Unreachable for events that made a record, whose time is in range.
        Err(_) => "00000000T000000Z".to_owned(),
    }
}

/// The object's bytes: the lines in order, gzip-compressed unless `compression` is `none`.
/// The gzip header carries no time or name, so the same lines always make the same bytes.
pub fn encode<'a>(
    compression: Compression,
    lines: impl Iterator<Item = &'a [u8]>,
) -> std::io::Result<Vec<u8>> {
    match compression {
        Compression::None => Ok(lines.collect::<Vec<_>>().concat()),
        Compression::Gzip => {
            let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::default());
            for line in lines {
                encoder.write_all(line)?;
            }
            encoder.finish()
        }
    }
}

/// How a destination lays out a batch's objects: its parsed prefix and compression, and the
/// words and rules of its store.
pub struct Layout {
    /// The config field of the prefix, which messages about a rendered prefix name
    /// (`key_prefix`).
    pub field: &'static str,
    /// What the store calls one object, for messages (`object`, `blob`).
    pub object: &'static str,
    /// The prefix's template, from [`prefix_template`].
    pub prefix: Template,
    pub compression: Compression,
    /// The store's rules for a full name (prefix and own name); `Err` says why a name breaks
    /// them, as the end of a sentence (`must not start with /`).
    pub check_name: fn(&str) -> Result<(), String>,
}

/// A batch ready to send: a slot per event (`Some` when answered before sending), its objects,
/// and (at the same index) the request that writes each object.
#[derive(Debug)]
pub struct Plan {
    /// One per event, in the order given; `Some` when answered before sending.
    pub results: Vec<Option<DeliveryResult>>,
    /// The objects, in the order they are written and answered.
    pub objects: Vec<Object>,
    /// The request of each object, or why it could not be made (then each of its events gets
    /// that error).
    pub requests: Vec<Result<http::Request, http::Error>>,
}

/// One object of a batch, written by one request.
#[derive(Debug)]
pub struct Object {
    /// The full name: the rendered prefix and the object's own [`name`].
    pub name: String,
    /// The positions (in the batch) of its events, in the order of its lines.
    pub events: Vec<usize>,
}

/// The events of one prefix, in batch order: their positions and lines.
struct Group {
    prefix: String,
    lines: Vec<(usize, Vec<u8>)>,
}

impl Plan {
    /// One result per event, in order: each object's answer (one per object, in order) read by
    /// `outcome` for each of its events; an error answers each of its events. An object without
    /// an answer, and an event without an outcome, are retryable.
    pub fn finish<E: Into<Failure>>(
        self,
        answers: Vec<Result<http::Response, E>>,
        outcome: impl Fn(&http::Response, &Object) -> DeliveryResult,
    ) -> Vec<DeliveryResult> {
        let mut results = self.results;
        let mut answers = answers.into_iter();
        for object in self.objects {
            let result = match answers.next() {
                Some(Ok(response)) => outcome(&response, &object),
                Some(Err(error)) => Err(error.into()),
                None => Err(Failure::retryable("the request was not sent")),
            };
            for position in object.events {
                results[position] = Some(result.clone());
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Failure::retryable("the event was not sent"))))
            .collect()
    }
}

impl Layout {
    /// The batch's objects: the events of each prefix (in order of first appearance) in batch
    /// order, cut at [`MAX_EVENTS`] events and [`MAX_OBJECT_BYTES`] bytes of NDJSON, each with
    /// the request `request` makes of it and its bytes ([`encode`]). An event whose prefix or
    /// record cannot be made fails alone, permanently, and is not written.
    pub fn plan(
        &self,
        events: &[Event],
        mut request: impl FnMut(&Object, Vec<u8>) -> Result<http::Request, http::Error>,
    ) -> Plan {
        // Every own name has this length: a rendered prefix is checked with a stand-in of it.
        let name_len = name(["x"], 0, self.compression).len();
        let mut results = Vec::with_capacity(events.len());
        let mut groups: Vec<Group> = Vec::new();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        for (position, event) in events.iter().enumerate() {
            match self.entry(event, name_len) {
                Ok((prefix, line)) => {
                    results.push(None);
                    let group = *group_of.entry(prefix.clone()).or_insert_with(|| {
                        groups.push(Group {
                            prefix,
                            lines: Vec::new(),
                        });
                        groups.len() - 1
                    });
                    groups[group].lines.push((position, line));
                }
                Err(failure) => results.push(Some(Err(failure))),
            }
        }
        let mut objects = Vec::new();
        let mut requests = Vec::new();
        for Group { prefix, lines } in groups {
            let sizes: Vec<usize> = lines.iter().map(|(_, line)| line.len()).collect();
            for range in batch::split(&sizes, MAX_EVENTS, MAX_OBJECT_BYTES) {
                let lines = &lines[range];
                let positions: Vec<usize> = lines.iter().map(|(p, _)| *p).collect();
                let own = name(
                    positions.iter().map(|&p| events[p].id.as_str()),
                    events[positions[0]].occurred_at,
                    self.compression,
                );
                let object = Object {
                    name: format!("{prefix}{own}"),
                    events: positions,
                };
                requests.push(
                    encode(self.compression, lines.iter().map(|(_, l)| l.as_slice()))
                        .map_err(|e| {
                            http::Error::permanent(format!("compressing the {}: {e}", self.object))
                        })
                        .and_then(|body| request(&object, body)),
                );
                objects.push(object);
            }
        }
        Plan {
            results,
            objects,
            requests,
        }
    }

    /// One event ready to be written: its rendered prefix and its NDJSON line.
    fn entry(&self, event: &Event, name_len: usize) -> Result<(String, Vec<u8>), Failure> {
        let field = self.field;
        let payload: Value = serde_json::from_slice(&event.payload)
            .map_err(|_| Failure::permanent("the event payload is not JSON"))?;
        let prefix = self
            .prefix
            .render_with_payload(event, &payload)
            .map_err(|e| Failure::permanent(format!("{field}: {e}")))?;
        (self.check_name)(&format!("{prefix}{}", "n".repeat(name_len)))
            .map_err(|m| Failure::permanent(format!("{field} rendered {prefix:?}, which {m}")))?;
        let record = record::event_record_with_payload(event, payload)?;
        let mut line = serde_json::to_vec(&record)
            .map_err(|e| Failure::permanent(format!("encoding the record: {e}")))?;
        line.push(b'\n');
        if line.len() > MAX_OBJECT_BYTES {
            return Err(Failure::permanent(format!(
                "the record is {} bytes, over the {MAX_OBJECT_BYTES} bytes of NDJSON {} {} \
                 holds; it was not written",
                line.len(),
                // "an object", "a blob".
                if self.object.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                },
                self.object
            )));
        }
        Ok((prefix, line))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use flate2::read::GzDecoder;
    use serde_json::json;

    use super::*;
    use crate::FailureKind;

    /// 2026-03-07T09:05:00.250Z.
    const TIME: u64 = 1_772_874_300_250;
    const HOUR_MS: u64 = 3_600_000;

    /// A store's rules in small: at most 1024 bytes, no empty, `.` or `..` segment.
    fn check_name(name: &str) -> Result<(), String> {
        if name.len() > 1024 {
            return Err(format!("makes names of {} bytes", name.len()));
        }
        match name.split('/').find(|s| ["", ".", ".."].contains(s)) {
            Some(segment) => Err(format!("must not have a {segment:?} segment")),
            None => Ok(()),
        }
    }

    /// The objects of `events` under `prefix`, each written by a PUT of its bytes.
    fn plan(prefix: &str, compression: Compression, events: &[Event]) -> Plan {
        layout(prefix, compression).plan(events, put)
    }

    fn put(_: &Object, body: Vec<u8>) -> Result<http::Request, http::Error> {
        Ok(http::Request::put("http://127.0.0.1:9000/o")?.body(body))
    }

    fn layout(prefix: &str, compression: Compression) -> Layout {
        Layout {
            field: "key_prefix",
            object: "object",
            prefix: prefix_template(prefix, 900, check_name).unwrap(),
            compression,
            check_name,
        }
    }

    /// The bytes of the `i`th object.
    fn body(plan: &Plan, i: usize) -> &[u8] {
        plan.requests[i].as_ref().unwrap().body_bytes()
    }

    fn event(id: &str, payload: Value) -> Event {
        event_at(id, TIME, payload)
    }

    fn event_at(id: &str, occurred_at: u64, payload: Value) -> Event {
        Event {
            id: id.to_owned(),
            event_type: "order.created".to_owned(),
            occurred_at,
            payload: payload.to_string().into_bytes(),
            attributes: Vec::new(),
        }
    }

    fn gunzip(bytes: &[u8]) -> String {
        let mut text = String::new();
        GzDecoder::new(bytes).read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn the_name_is_stable_and_follows_the_ids_in_order() {
        let pinned = name(["evt_1", "evt_2", "evt_3"], TIME, Compression::Gzip);
        // Pinned: a change here renames every object of every store, and retries of old batches
        // would no longer find what they wrote.
        assert_eq!(
            pinned,
            "20260307T090500Z-0e2dbe45be0197e45038a53553fe9028.ndjson.gz"
        );
        assert_eq!(
            name(["evt_1", "evt_2", "evt_3"], TIME, Compression::Gzip),
            pinned
        );
        // Another order, another id, fewer ids: another name.
        let other = |ids: &[&str]| name(ids.iter().copied(), TIME, Compression::Gzip);
        assert_ne!(other(&["evt_2", "evt_1", "evt_3"]), pinned);
        assert_ne!(other(&["evt_1", "evt_2", "evt_4"]), pinned);
        assert_ne!(other(&["evt_1", "evt_2"]), pinned);
        // Ids are length-prefixed: moving a character from one id to the next changes the name.
        assert_ne!(other(&["ab", "c"]), other(&["a", "bc"]));
        assert_ne!(other(&["a", ""]), other(&["a"]));
        // The extension follows the compression; the time is the first event's.
        assert_eq!(
            name(["evt_1", "evt_2", "evt_3"], TIME, Compression::None),
            "20260307T090500Z-0e2dbe45be0197e45038a53553fe9028.ndjson"
        );
        assert!(name(["evt_1"], 0, Compression::None).starts_with("19700101T000000Z-"));
    }

    #[test]
    fn gzip_round_trips_and_none_is_plain_ndjson() {
        let lines_in: Vec<Vec<u8>> = (0..200)
            .map(|i| format!("{{\"i\":{i},\"text\":\"{}\"}}\n", "abc".repeat(i)).into_bytes())
            .collect();
        let plain: Vec<u8> = lines_in.concat();
        let gzip = encode(Compression::Gzip, lines_in.iter().map(Vec::as_slice)).unwrap();
        assert!(
            gzip.len() < plain.len() / 5,
            "{} of {}",
            gzip.len(),
            plain.len()
        );
        assert_eq!(gunzip(&gzip).as_bytes(), plain);
        assert_eq!(
            encode(Compression::None, lines_in.iter().map(Vec::as_slice)).unwrap(),
            plain
        );
        // Nothing at all still makes a valid (empty) gzip stream.
        assert_eq!(
            gunzip(&encode(Compression::Gzip, std::iter::empty()).unwrap()),
            ""
        );
    }

    #[test]
    fn a_batch_is_one_ndjson_object_under_hour_partitions() {
        let events = [
            event("evt_1", json!({ "a": 1, "s": "Zoë ☕" })),
            event("evt_2", json!([1, "two"])),
            event("evt_3", json!("text")),
        ];
        let gzip = plan("events/", Compression::Gzip, &events);
        assert_eq!(gzip.objects.len(), 1);
        assert_eq!(gzip.objects[0].events, [0, 1, 2]);
        assert_eq!(
            gzip.objects[0].name,
            "events/year=2026/month=03/day=07/hour=09/20260307T090500Z-0e2dbe45be0197e45038a53553fe9028.ndjson.gz"
        );
        // One record a line, in batch order; gzip holds the very lines of `none`.
        let plain = plan("events/", Compression::None, &events);
        assert!(plain.objects[0].name.ends_with("9028.ndjson"));
        assert_eq!(
            String::from_utf8(body(&plain, 0).to_vec()).unwrap(),
            "{\"id\":\"evt_1\",\"occurred_at\":\"2026-03-07T09:05:00.25Z\",\"payload\":{\"a\":1,\"s\":\"Zoë ☕\"},\"type\":\"order.created\"}\n\
             {\"id\":\"evt_2\",\"occurred_at\":\"2026-03-07T09:05:00.25Z\",\"payload\":[1,\"two\"],\"type\":\"order.created\"}\n\
             {\"id\":\"evt_3\",\"occurred_at\":\"2026-03-07T09:05:00.25Z\",\"payload\":\"text\",\"type\":\"order.created\"}\n"
        );
        assert_eq!(&body(&gzip, 0)[..2], [0x1f, 0x8b], "a gzip stream");
        assert_eq!(gunzip(body(&gzip, 0)).as_bytes(), body(&plain, 0));
        // The same batch makes the same name and bytes, so a retry rewrites the object as it was.
        let again = plan("events/", Compression::Gzip, &events);
        assert_eq!(again.objects[0].name, gzip.objects[0].name);
        assert_eq!(body(&again, 0), body(&gzip, 0));
    }

    #[test]
    fn events_of_other_hours_go_to_their_own_partitions() {
        let events = [
            event_at("evt_1", TIME, json!({})),
            event_at("evt_2", TIME + HOUR_MS, json!({})),
            event_at("evt_3", TIME + 60_000, json!({})),
            // A day and a month later: 2026-04-08.
            event_at("evt_4", TIME + 32 * 24 * HOUR_MS, json!({})),
        ];
        let plan = plan("", Compression::Gzip, &events);
        let objects: Vec<(String, Vec<usize>)> = plan
            .objects
            .iter()
            .map(|o| {
                let partition = o.name.rsplit_once('/').unwrap().0.to_owned();
                (partition, o.events.clone())
            })
            .collect();
        assert_eq!(
            objects,
            [
                ("year=2026/month=03/day=07/hour=09".to_owned(), vec![0, 2]),
                ("year=2026/month=03/day=07/hour=10".to_owned(), vec![1]),
                ("year=2026/month=04/day=08/hour=09".to_owned(), vec![3]),
            ]
        );
        // Each object's name comes from its own events.
        assert!(plan.objects[0]
            .name
            .ends_with(&name(["evt_1", "evt_3"], TIME, Compression::Gzip)));
        assert!(plan.objects[1].name.ends_with(&name(
            ["evt_2"],
            TIME + HOUR_MS,
            Compression::Gzip
        )));
    }

    #[test]
    fn a_prefix_that_places_the_time_gets_no_default_partitions() {
        let prefix_of = |prefix: &str| {
            let plan = plan(
                prefix,
                Compression::Gzip,
                &[event("evt_1", json!({ "tenant": "t-7" }))],
            );
            plan.objects[0]
                .name
                .rsplit_once('/')
                .map_or(String::new(), |(p, _)| p.to_owned())
        };
        assert_eq!(
            prefix_of("raw/{{time.year}}/{{time.month}}/{{time.day}}/"),
            "raw/2026/03/07"
        );
        assert_eq!(
            prefix_of("{{event.type}}/dt={{ time.year }}-{{time.month}}-{{time.day}}/"),
            "order.created/dt=2026-03-07"
        );
        // Without a time placeholder: the default partitions, after a / when needed.
        assert_eq!(
            prefix_of("events"),
            "events/year=2026/month=03/day=07/hour=09"
        );
        assert_eq!(
            prefix_of("tenant={{payload.tenant}}/"),
            "tenant=t-7/year=2026/month=03/day=07/hour=09"
        );
        assert_eq!(prefix_of(""), "year=2026/month=03/day=07/hour=09");
        // A prefix that ends mid-name: the name follows it directly.
        let plan = plan(
            "logs/{{time.year}}{{time.month}}{{time.day}}-",
            Compression::Gzip,
            &[event("evt_1", json!({}))],
        );
        assert!(plan.objects[0]
            .name
            .starts_with("logs/20260307-20260307T090500Z-"));
    }

    #[test]
    fn a_prefix_is_a_template_of_good_names() {
        for good in [
            "",
            "events/",
            "events/{{event.type}}/{{time.year}}/",
            "{{payload.k}}",
        ] {
            assert!(prefix_template(good, 900, check_name).is_ok(), "{good:?}");
        }
        let why = |prefix: &str| prefix_template(prefix, 900, check_name).err().unwrap();
        assert!(why("{{event.nope}}").contains("event.nope"));
        assert!(why("{{payload.x").starts_with("unclosed {{"));
        assert_eq!(why("/events"), "must not have a \"\" segment");
        assert_eq!(why("a//b"), "must not have a \"\" segment");
        assert_eq!(why("a/../b"), "must not have a \"..\" segment");
        assert_eq!(why("./a"), "must not have a \".\" segment");
        // Placeholders count as text: `{{payload.k}}/{{payload.k}}` is a good name.
        assert!(prefix_template("{{payload.k}}/{{payload.k}}/", 900, check_name).is_ok());
        assert_eq!(why(&"p".repeat(901)), "must be at most 900 characters");
        // Within the characters, but its names would be too long.
        assert!(why(&"ü".repeat(900)).starts_with("makes names of "));
    }

    #[test]
    fn events_are_grouped_by_their_rendered_prefix() {
        let mut not_json = event("evt_4", json!({}));
        not_json.payload = b"{nope".to_vec();
        let events = [
            event("evt_1", json!({ "tenant": "a" })),
            event("evt_2", json!({ "tenant": "b" })),
            event("evt_3", json!({ "other": true })),
            not_json,
            event("evt_5", json!({ "tenant": "a" })),
            event("evt_6", json!({ "tenant": "a/../b" })),
            event("evt_7", json!({ "tenant": "p".repeat(1000) })),
        ];
        let plan = plan("tenant={{payload.tenant}}/", Compression::Gzip, &events);
        // Events whose name cannot be made fail alone, permanently, and are not written.
        let failed = |i: usize| plan.results[i].clone().unwrap().unwrap_err();
        assert_eq!(failed(2).message, "key_prefix: the payload has no tenant");
        assert_eq!(failed(3).message, "the event payload is not JSON");
        assert!(
            failed(5)
                .message
                .starts_with("key_prefix rendered \"tenant=a/../b/year=2026/"),
            "{}",
            failed(5).message
        );
        assert!(failed(5)
            .message
            .ends_with(", which must not have a \"..\" segment"));
        assert!(failed(6).message.contains("which makes names of 1"));
        for i in [2, 3, 5, 6] {
            assert_eq!(failed(i).kind, FailureKind::Permanent);
        }
        assert!([0, 1, 4].iter().all(|&i| plan.results[i].is_none()));
        let groups: Vec<(&str, &[usize])> = plan
            .objects
            .iter()
            .map(|o| (o.name.split('/').next().unwrap(), o.events.as_slice()))
            .collect();
        assert_eq!(groups, [("tenant=a", &[0, 4][..]), ("tenant=b", &[1][..])]);
        assert_eq!(plan.requests.len(), 2);

        // Answers go back to each object's own events; an object without one is retryable.
        let ok = http::Response {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        };
        let results = plan.finish(vec![Ok::<_, Failure>(ok)], |response, object| {
            Ok(crate::Delivered {
                status_code: Some(response.status),
                response_excerpt: Some(format!("{}, {} events", object.name, object.events.len())),
            })
        });
        assert_eq!(results.len(), 7);
        for i in [0, 4] {
            let excerpt = results[i].clone().unwrap().response_excerpt.unwrap();
            assert!(excerpt.starts_with("tenant=a/") && excerpt.ends_with(", 2 events"));
        }
        let unanswered = results[1].clone().unwrap_err();
        assert_eq!(unanswered.kind, FailureKind::Retryable);
        assert_eq!(unanswered.message, "the request was not sent");
        for i in [2, 3, 5, 6] {
            assert_eq!(results[i].clone().unwrap_err().kind, FailureKind::Permanent);
        }
    }

    #[test]
    fn large_batches_are_cut_into_objects_of_at_most_8_mib() {
        let big = "x".repeat(700 * 1024);
        let events: Vec<Event> = (0..25)
            .map(|i| event(&format!("evt_{i}"), json!({ "big": big })))
            .collect();
        let cut = plan("", Compression::None, &events);
        let counts: Vec<usize> = cut.objects.iter().map(|o| o.events.len()).collect();
        assert_eq!(counts, [11, 11, 3]);
        let mut next = 0;
        for (i, object) in cut.objects.iter().enumerate() {
            assert!(body(&cut, i).len() <= MAX_OBJECT_BYTES);
            assert_eq!(
                object.events,
                (next..next + object.events.len()).collect::<Vec<_>>()
            );
            next += object.events.len();
            let ids = object.events.iter().map(|&p| events[p].id.as_str());
            assert!(object.name.ends_with(&name(ids, TIME, Compression::None)));
        }
        assert_eq!(next, 25);

        // At most MAX_EVENTS events in one object, however small.
        let small: Vec<Event> = (0..MAX_EVENTS + 1)
            .map(|i| event(&format!("evt_{i}"), json!({})))
            .collect();
        let counts: Vec<usize> = plan("", Compression::Gzip, &small)
            .objects
            .iter()
            .map(|o| o.events.len())
            .collect();
        assert_eq!(counts, [MAX_EVENTS, 1]);

        // A record over the limit on its own fails alone.
        let mut huge = event("evt_huge", json!({}));
        huge.payload = format!("\"{}\"", "y".repeat(MAX_OBJECT_BYTES)).into_bytes();
        let mut blobs = layout("", Compression::None);
        blobs.object = "blob";
        let alone = blobs.plan(&[event("evt_0", json!({})), huge], put);
        assert_eq!(alone.objects.len(), 1);
        let refused = alone.results[1].clone().unwrap().unwrap_err();
        assert_eq!(refused.kind, FailureKind::Permanent);
        assert!(
            refused.message.ends_with(
                " bytes, over the 8388608 bytes of NDJSON a blob holds; it was not written"
            ),
            "{}",
            refused.message
        );
    }
}
