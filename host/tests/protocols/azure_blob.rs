//! `azure_blob` against Azurite (npm), the Azure Storage emulator, started by each test on a free
//! port with a data directory of its own. Azurite checks SharedKey signatures and SAS tokens with
//! its well-known development account (`devstoreaccount1`) and published key. Containers are
//! created, SAS tokens signed, and blobs listed, downloaded, gunzipped and parsed with
//! Microsoft's `azure-storage-blob` client (`host/tests/peers/peer_azure.py`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::common::eventually;
use crate::support::{
    assert_batched, assert_same_events, fast_retries, free_port, outcomes, python, sample_events,
    unique, Peer, Setup,
};

const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's published development key.
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn azurite_bin() -> String {
    std::env::var("PUSHRAIL_AZURITE").unwrap_or_else(|_| {
        "/var/tmp/pushrail-tools/azurite/node_modules/.bin/azurite-blob".to_owned()
    })
}

/// Azurite's blob service on a port, with its data directory (removed when dropped).
struct Azurite {
    _peer: Peer,
    dir: PathBuf,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts Azurite's blob service on `port`. No `--skipApiVersionCheck`: the plugin's
/// `x-ms-version` must be one Azurite knows.
fn azurite(port: u16) -> Azurite {
    let bin = azurite_bin();
    assert!(
        std::path::Path::new(&bin).exists(),
        "Azurite is not installed at {bin}: run scripts/test, which installs it (ensure_azurite)"
    );
    let dir = std::env::temp_dir().join(unique("azurite"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut command = Command::new(bin);
    command
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .arg("--location")
        .arg(&dir)
        .args(["--disableTelemetry", "--silent"]);
    let mut peer = Peer::spawn("azurite", command);
    peer.wait_for_port(port);
    Azurite { _peer: peer, dir }
}

/// Runs `peer_azure.py PORT ARGS...` (azure-storage-blob against Azurite) and returns its JSON.
fn peer(port: u16, args: &[&str]) -> Value {
    let port = port.to_string();
    let mut all = vec![port.as_str()];
    all.extend_from_slice(args);
    python("peer_azure.py", &all)
}

/// A container name no other test uses, within Azure's rules (lower case, digits, single `-`).
fn container_name() -> String {
    unique("pushrail")
        .replace('_', "-")
        .to_lowercase()
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}/{ACCOUNT}")
}

fn config(port: u16, container: &str, blob_prefix: &str) -> Value {
    json!({
        "account": ACCOUNT, "container": container, "blob_prefix": blob_prefix,
        "endpoint": endpoint(port)
    })
}

fn shared_key(key: &str) -> Option<(&'static str, Value)> {
    Some((
        "azure_shared_key",
        json!({ "account_name": ACCOUNT, "account_key": key }),
    ))
}

/// Events published together are handed to the plugin together: one batch, so one blob.
fn one_batch() -> Vec<String> {
    vec!["--batch-linger".to_owned(), "300ms".to_owned()]
}

/// What the blobs hold, by event id: (type, payload); no event is in two blobs, or twice in one.
fn received(blobs: &Value) -> BTreeMap<String, (String, Value)> {
    let mut out = BTreeMap::new();
    for blob in blobs.as_array().unwrap() {
        for record in blob["records"].as_array().unwrap() {
            let id = record["id"].as_str().unwrap().to_owned();
            let previous = out.insert(
                id.clone(),
                (
                    record["type"].as_str().unwrap().to_owned(),
                    record["payload"].clone(),
                ),
            );
            assert!(previous.is_none(), "{id} was written twice: {blobs}");
        }
    }
    out
}

fn utc(record: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(record["occurred_at"].as_str().unwrap(), &Rfc3339).unwrap()
}

/// The name the `azure_blob` type gives a blob of these records after its prefix (see its
/// README): the first event's time, the first 32 hex digits of the SHA-256 of the ids in order
/// (each after its length as 8 bytes big-endian), the extension.
fn expected_name(records: &[Value], extension: &str) -> String {
    let mut hash = Sha256::new();
    for record in records {
        let id = record["id"].as_str().unwrap();
        hash.update((id.len() as u64).to_be_bytes());
        hash.update(id.as_bytes());
    }
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let t = utc(&records[0]);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}{extension}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        &hex[..32]
    )
}

/// The default partitions of a record's time: `year=YYYY/month=MM/day=DD/hour=HH/`.
fn hour_partitions(record: &Value) -> String {
    let t = utc(record);
    format!(
        "year={:04}/month={:02}/day={:02}/hour={:02}/",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour()
    )
}

/// Checks one blob as the type writes it: its name, type, content type, metadata and MD5.
fn assert_blob(blob: &Value, blob_prefix: &str, extension: &str, content_type: &str) {
    let records = blob["records"].as_array().unwrap();
    assert_eq!(
        blob["name"],
        format!(
            "{blob_prefix}{}{}",
            hour_partitions(&records[0]),
            expected_name(records, extension)
        ),
        "{blob}"
    );
    assert_eq!(blob["blob_type"], "BlockBlob", "{blob}");
    assert_eq!(blob["ends_with_newline"], true, "{blob}");
    assert_eq!(blob["content_type"], content_type, "{blob}");
    assert_eq!(blob["content_encoding"], Value::Null, "{blob}");
    assert_eq!(
        blob["metadata"]["pushrail_events"],
        records.len().to_string(),
        "{blob}"
    );
    assert_eq!(
        blob["content_md5"], blob["stored_md5"],
        "the MD5 sent with the blob is that of the stored bytes: {blob}"
    );
}

#[tokio::test]
async fn azure_blob_writes_a_batch_as_one_gzipped_block_blob_and_a_replay_overwrites_it() {
    let port = free_port();
    let _azurite = azurite(port);
    let container = container_name();
    peer(port, &["create-container", &container]);
    let setup = Setup::new(
        &one_batch(),
        "azure_blob",
        config(port, &container, "events/"),
        shared_key(DEV_KEY),
    )
    .await;
    let events = sample_events(6);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    assert_batched(&delivered);

    let blobs = peer(port, &["read-blobs", &container, ""]);
    assert_eq!(blobs.as_array().unwrap().len(), 1, "{blobs}");
    assert_blob(&blobs[0], "events/", ".ndjson.gz", "application/gzip");
    let name = blobs[0]["name"].as_str().unwrap().to_owned();
    for d in &delivered {
        assert_eq!(outcomes(d), ["succeeded"], "{d}");
        assert_eq!(d["attempts"][0]["status_code"], 201, "{d}");
        let excerpt = d["attempts"][0]["response_excerpt"].as_str().unwrap();
        assert!(
            excerpt.starts_with(&format!(
                "{}/{container}/{name}, 6 events, ETag ",
                endpoint(port)
            )),
            "{excerpt}"
        );
    }
    assert_same_events(&ids, &events, &received(&blobs));

    // Replaying the whole batch writes the same events again: the same name, so the blob is
    // overwritten, not joined by a second one.
    let now = OffsetDateTime::now_utc();
    let (status, answer) = setup
        .customer
        .call(
            "POST",
            "/embed/v1/replays",
            Some(json!({
                "since": (now - Duration::from_secs(3600)).format(&Rfc3339).unwrap(),
                "until": (now + Duration::from_secs(3600)).format(&Rfc3339).unwrap(),
                "status": "succeeded"
            })),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["deliveries"], 6, "{answer}");
    eventually("the replay", Duration::from_secs(30), || async {
        let all = setup.customer.deliveries("?limit=500").await;
        let mut done = 0;
        for d in &all {
            let detail = setup.customer.delivery(d["id"].as_str().unwrap()).await;
            if detail["status"] == "succeeded" && outcomes(&detail).len() == 2 {
                done += 1;
            }
        }
        (done == ids.len()).then_some(())
    })
    .await;
    let again = peer(port, &["read-blobs", &container, ""]);
    assert_eq!(again.as_array().unwrap().len(), 1, "{again}");
    assert_eq!(again[0]["name"], name.as_str());
    assert_same_events(&ids, &events, &received(&again));
}

#[tokio::test]
async fn azure_blob_delivers_with_a_container_sas_token_under_a_templated_prefix() {
    let port = free_port();
    let _azurite = azurite(port);
    let container = container_name();
    peer(port, &["create-container", &container]);
    let sas = peer(port, &["sas", &container]);
    // As the portal shows it, with its leading `?`.
    let token = format!("?{}", sas["sas_token"].as_str().unwrap());
    // A prefix with a space and non-ASCII text: the blob name is percent-encoded in the URL.
    let prefix = "raw/{{event.type}}/zoë ☕ & co/";
    let mut config = config(port, &container, prefix);
    config["compression"] = json!("none");
    let setup = Setup::new(
        &one_batch(),
        "azure_blob",
        config,
        Some(("azure_sas_token", json!({ "sas_token": token }))),
    )
    .await;
    let events: Vec<(String, Value)> = sample_events(4)
        .into_iter()
        .map(|(_, payload)| ("order.created".to_owned(), payload))
        .collect();
    let ids = setup.publish(&events).await;
    setup.wait_for("succeeded", ids.len()).await;
    let blobs = peer(port, &["read-blobs", &container, "raw/"]);
    assert_eq!(blobs.as_array().unwrap().len(), 1, "{blobs}");
    assert_blob(
        &blobs[0],
        "raw/order.created/zoë ☕ & co/",
        ".ndjson",
        "application/x-ndjson",
    );
    assert_same_events(&ids, &events, &received(&blobs));
}

#[tokio::test]
async fn azure_blob_wrong_account_key_is_a_permanent_error_with_azures_code() {
    let port = free_port();
    let _azurite = azurite(port);
    let container = container_name();
    peer(port, &["create-container", &container]);
    // A well-formed key (64 bytes, base64) that is not the account's.
    let wrong =
        "d3JvbmctYWNjb3VudC1rZXktZm9yLXB1c2hyYWlsLXRlc3RzLXdyb25nLWtleSEhISEhISEhISEhISEhIQ==";
    let setup = Setup::new(
        &fast_retries(),
        "azure_blob",
        config(port, &container, ""),
        shared_key(wrong),
    )
    .await;
    setup.publish(&sample_events(1)).await;
    let failed = setup.wait_for("failed", 1).await;
    assert_eq!(outcomes(&failed[0]), ["permanent_error"], "{}", failed[0]);
    let attempt = &failed[0]["attempts"][0];
    let error = attempt["error"].as_str().unwrap();
    assert!(error.starts_with("AuthorizationFailure: "), "{error}");
    assert!(
        error.contains(&format!("; Put Blob {}/{container}/", endpoint(port))),
        "{error}"
    );
    assert_eq!(attempt["status_code"], 403, "{attempt}");
    assert!(
        !failed[0].to_string().contains(wrong),
        "no secret in the log"
    );
    assert_eq!(
        peer(port, &["read-blobs", &container, ""]),
        json!([]),
        "nothing was written"
    );
}

#[tokio::test]
async fn azure_blob_a_missing_container_is_a_permanent_error_with_containernotfound() {
    let port = free_port();
    let _azurite = azurite(port);
    let container = container_name();
    let setup = Setup::new(
        &fast_retries(),
        "azure_blob",
        config(port, &container, ""),
        shared_key(DEV_KEY),
    )
    .await;
    let ids = setup.publish(&sample_events(2)).await;
    for d in setup.wait_for("failed", ids.len()).await {
        assert_eq!(outcomes(&d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(error.starts_with("ContainerNotFound: "), "{error}");
        assert_eq!(d["attempts"][0]["status_code"], 404, "{d}");
    }
}
