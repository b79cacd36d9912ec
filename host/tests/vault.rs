//! Customer secrets: encrypted at rest, bound to their row, rotatable, never printed.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{database, eventually, verify_with_standardwebhooks, Host, Receiver, SECRET};
use serde_json::json;

const NEW_SECRET: &str = "whsec_3Yj8bXJ0dHZdpm5DQY5uSXPu1Gc5yZ5tWvXc3pV0nTQ=";

fn files_containing(host: &Host, needles: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stored = common::stored_bytes(host);
    assert!(!stored.is_empty());
    stored.push((
        "host.log".to_owned(),
        std::fs::read(host.log_path()).unwrap(),
    ));
    for (name, bytes) in stored {
        for needle in needles {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                hits.push(format!("{needle} in {name}"));
            }
        }
    }
    hits
}

#[tokio::test]
async fn secrets_appear_nowhere_on_disk_in_answers_or_in_debug_logs() {
    let receiver = Receiver::start().await;
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let secrets = [
        (
            "basic",
            json!({ "username": "svc-user", "password": "pw-Q7rT9zLx2mVb" }),
        ),
        ("bearer", json!({ "token": "tok-H4nd8sW2kE6yP0aZ" })),
        (
            "aws_access_key",
            json!({ "access_key_id": "AKIAEXAMPLE123", "secret_access_key": "aws-Zt6Ye2Wq8Rp4Nm0Lk" }),
        ),
        ("secret", json!({ "value": "val-Bc5Dx7Fg9Hj1Kl3Mn" })),
        (
            "postgres_dsn",
            json!({ "dsn": "postgres://u:dsn-Vb2Nm4Qw6Er8Ty0U@db/x" }),
        ),
    ];
    let needles = [
        "pw-Q7rT9zLx2mVb",
        "tok-H4nd8sW2kE6yP0aZ",
        "aws-Zt6Ye2Wq8Rp4Nm0Lk",
        "val-Bc5Dx7Fg9Hj1Kl3Mn",
        "dsn-Vb2Nm4Qw6Er8Ty0U",
        &SECRET[6..],
    ];
    for (kind, secret) in &secrets {
        customer
            .create(
                "/embed/v1/credentials",
                json!({ "name": kind, "kind": kind, "secret": secret }),
            )
            .await;
    }
    // Deliveries decrypt: one signed, one with a bearer token.
    customer.webhook(&receiver.url, SECRET).await;
    let (_, list) = customer.call("GET", "/embed/v1/credentials", None).await;
    let bearer = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "bearer")
        .unwrap()["id"]
        .clone();
    customer
        .create("/embed/v1/destinations", json!({ "type": "webhook", "name": "b", "config": { "url": receiver.url }, "credential_id": bearer }))
        .await;
    vendor.publish("c", "order.created", json!({})).await;
    eventually("two deliveries", Duration::from_secs(10), || async {
        (receiver.count() == 2).then_some(())
    })
    .await;
    let authorization = receiver
        .requests()
        .iter()
        .find_map(|r| r.header("authorization").map(str::to_owned));
    assert_eq!(
        authorization.as_deref(),
        Some("Bearer tok-H4nd8sW2kE6yP0aZ"),
        "the secret did reach the peer"
    );

    let answers = list.to_string();
    for needle in &needles {
        assert!(!answers.contains(needle), "{needle} in an API answer");
    }
    let fingerprints: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["fingerprint"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        fingerprints
            .iter()
            .any(|f| f.starts_with("AKIAEXAMPLE123 · fp_")),
        "{fingerprints:?}"
    );

    assert!(
        host.log().contains("DEBUG"),
        "the log really is at debug level"
    );
    let hits = files_containing(&host, &needles);
    assert!(hits.is_empty(), "secrets found in plain text: {hits:?}");
}

#[tokio::test]
async fn a_ciphertext_copied_to_another_sub_tenant_does_not_decrypt() {
    let receiver = Receiver::start().await;
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let alice = vendor.session("alice").await;
    let mallory = vendor.session("mallory").await;
    let alice_secret = alice
        .create(
            "/embed/v1/credentials",
            json!({ "name": "a", "kind": "webhook_secret", "secret": { "secret": SECRET } }),
        )
        .await;
    let mallory_destination = mallory.webhook(&receiver.url, NEW_SECRET).await;

    // An attacker with write access to the database copies Alice's sealed secret into Mallory's row.
    let db = database(&host).await;
    sqlx::query(
        "UPDATE credentials SET (master_kid, wrapped_key, ciphertext) =
           (SELECT master_kid, wrapped_key, ciphertext FROM credentials WHERE id = $1)
         WHERE id = $2",
    )
    .bind(alice_secret["id"].as_str().unwrap())
    .bind(mallory_destination["credential_id"].as_str().unwrap())
    .execute(&db)
    .await
    .unwrap();

    let id = mallory_destination["id"].as_str().unwrap();
    let (status, answer) = mallory
        .call("POST", &format!("/embed/v1/destinations/{id}/test"), None)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["attempt"]["outcome"], "permanent_error");
    assert!(
        answer["attempt"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot be decrypted"),
        "{answer}"
    );
    assert_eq!(receiver.count(), 0, "nothing was sent with a stolen secret");
    let failed = mallory.deliveries("?status=failed").await;
    assert_eq!(failed.len(), 1);
    let (status, _) = mallory.call("GET", "/embed/v1/destinations", None).await;
    assert_eq!(status, 200, "the host is still serving");
}

#[tokio::test]
async fn rotation_under_load_switches_signatures_at_the_rotation_answer() {
    let receiver = Receiver::start().await;
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let destination = customer.webhook(&receiver.url, SECRET).await;
    let credential = destination["credential_id"].as_str().unwrap().to_owned();

    let mut before = Vec::new();
    for i in 0..40 {
        before.push(
            vendor.publish("c", "tick", json!({ "i": i })).await["event_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        if i == 20 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (status, rotated) = customer
        .call(
            "POST",
            &format!("/embed/v1/credentials/{credential}/rotate"),
            Some(json!({ "secret": { "secret": NEW_SECRET } })),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert!(rotated["rotated_at"].is_string());
    let mut after = Vec::new();
    for i in 0..20 {
        after.push(
            vendor.publish("c", "tock", json!({ "i": i })).await["event_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    eventually("sixty deliveries", Duration::from_secs(30), || async {
        (receiver.count() >= 60).then_some(())
    })
    .await;
    let requests = receiver.requests();
    let later: Vec<_> = requests
        .iter()
        .filter(|r| {
            after
                .iter()
                .any(|id| Some(id.as_str()) == r.header("webhook-id"))
        })
        .cloned()
        .collect();
    assert_eq!(later.len(), 20);
    assert_eq!(
        verify_with_standardwebhooks(NEW_SECRET, &later),
        20,
        "every later delivery uses the new secret"
    );
    // Earlier ones went out with one secret or the other, and none failed.
    for request in requests.iter().filter(|r| {
        before
            .iter()
            .any(|id| Some(id.as_str()) == r.header("webhook-id"))
    }) {
        let one = std::slice::from_ref(request);
        let old = std::panic::catch_unwind(|| verify_with_standardwebhooks(SECRET, one)).is_ok();
        assert!(old || verify_with_standardwebhooks(NEW_SECRET, one) == 1);
    }
    assert_eq!(
        customer
            .deliveries("?status=succeeded&limit=500")
            .await
            .len(),
        60
    );
}

#[tokio::test]
async fn the_master_key_rotates_and_the_old_one_is_no_longer_needed() {
    let receiver = Receiver::start().await;
    let mut host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let destination = customer.webhook(&receiver.url, SECRET).await;
    let id = destination["id"].as_str().unwrap().to_owned();

    let mut rotate = host.command();
    rotate.args(["keys", "rotate"]).env("PUSHRAIL_LOG", "warn");
    let key_file = host.data_dir.join("master.key");
    let old_key = match host.master_key.clone() {
        // Several hosts on PostgreSQL: the operator gives the new key and the old one, runs the
        // rotation, and from then on only the new key is needed.
        Some(old) => {
            let new = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
            rotate
                .env("PUSHRAIL_MASTER_KEY", &new)
                .env("PUSHRAIL_MASTER_KEY_PREVIOUS", &old);
            host.master_key = Some(new);
            old
        }
        None => {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
                0o600
            );
            std::fs::read_to_string(&key_file).unwrap()
        }
    };
    let out = rotate.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["credentials"], 1);
    assert_eq!(report["signing_keys"], 1);

    if host.database.is_none() {
        use std::os::unix::fs::PermissionsExt as _;
        let new_key = std::fs::read_to_string(&key_file).unwrap();
        assert_ne!(new_key.trim(), old_key.trim());
        assert_eq!(
            new_key.lines().count(),
            1,
            "the old master key is forgotten"
        );
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The live host picks up the new key file without a restart, and seals new secrets with it.
        let (status, answer) = customer
            .call("POST", &format!("/embed/v1/destinations/{id}/test"), None)
            .await;
        assert_eq!(
            (status, answer["attempt"]["outcome"].as_str()),
            (200, Some("succeeded")),
            "{answer}"
        );
        customer
            .create(
                "/embed/v1/credentials",
                json!({ "name": "later", "kind": "secret", "secret": { "value": "v" } }),
            )
            .await;
    }
    let db = database(&host).await;
    let kids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT master_kid FROM credentials")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(
        kids.len(),
        1,
        "every credential is under the new key: {kids:?}"
    );

    // Restarted with the new key alone, everything still opens.
    host.restart().await;
    let (status, answer) = customer
        .call("POST", &format!("/embed/v1/destinations/{id}/test"), None)
        .await;
    assert_eq!(
        (status, answer["attempt"]["outcome"].as_str()),
        (200, Some("succeeded")),
        "{answer}"
    );
    assert!(verify_with_standardwebhooks(SECRET, &receiver.requests()) >= 1);
    let fresh = vendor.session("c").await;
    let (status, _) = fresh.call("GET", "/embed/v1/destinations", None).await;
    assert_eq!(
        status, 200,
        "session signing still works: its key was re-wrapped too"
    );
}
