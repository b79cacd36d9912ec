//! Customer-owned IAM roles (`aws_role`) against moto server with its auth on: the host assumes
//! the role through moto's STS with the deployment's own key, and the temporary keys it gets
//! back (checked by moto: signature, session token, the role's policy) deliver to SQS.

use serde_json::{json, Value};

use crate::common::{eventually, Host, Session, Tenant};
use crate::support::{aws, aws_as, free_port, moto, outcomes, unique};

/// Requests moto serves before it checks signatures: `create-key` (3) and `create-queue` (1),
/// then 2 for each `create-role`.
fn set_up_requests(roles: u32) -> u32 {
    4 + 2 * roles
}

fn operator_args(port: u16, key: &Value) -> Vec<String> {
    vec![
        "--aws-access-key-id".into(),
        key["access_key_id"].as_str().unwrap().into(),
        "--aws-secret-access-key".into(),
        key["secret_access_key"].as_str().unwrap().into(),
        "--aws-account-id".into(),
        "123456789012".into(),
        "--aws-sts-endpoint".into(),
        format!("http://127.0.0.1:{port}"),
    ]
}

async fn external_id(customer: &Session) -> String {
    let (status, trust) = customer.call("GET", "/embed/v1/aws-role", None).await;
    assert_eq!(status, 200, "{trust}");
    let statement = &trust["trust_policy"]["Statement"][0];
    assert_eq!(
        statement["Principal"]["AWS"], "arn:aws:iam::123456789012:root",
        "{trust}"
    );
    let external_id = trust["external_id"].as_str().unwrap().to_owned();
    assert_eq!(
        statement["Condition"]["StringEquals"]["sts:ExternalId"], external_id,
        "{trust}"
    );
    external_id
}

async fn sqs_destination(customer: &Session, port: u16, queue: &str, role_arn: &str) -> String {
    let credential = customer
        .create(
            "/embed/v1/credentials",
            json!({ "name": "role", "kind": "aws_role", "secret": { "role_arn": role_arn } }),
        )
        .await;
    assert_eq!(
        credential["fingerprint"]
            .as_str()
            .unwrap()
            .split(" · ")
            .next(),
        Some(role_arn)
    );
    let destination = customer
        .create(
            "/embed/v1/destinations",
            json!({
                "type": "sqs", "name": "queue",
                "config": { "queue_url": queue, "region": "us-east-1", "endpoint": format!("http://127.0.0.1:{port}") },
                "credential_id": credential["id"],
            }),
        )
        .await;
    destination["id"].as_str().unwrap().to_owned()
}

async fn publish(vendor: &Tenant, customer: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let answer = vendor
            .publish(customer, "order.created", json!({ "order": i }))
            .await;
        ids.push(answer["event_id"].as_str().unwrap().to_owned());
    }
    ids
}

async fn wait_succeeded(customer: &Session, n: usize) -> Vec<Value> {
    eventually(
        &format!("{n} deliveries succeeded"),
        std::time::Duration::from_secs(60),
        || async {
            let all = customer.deliveries("?limit=500").await;
            for d in &all {
                if d["status"] == "failed" {
                    let detail = customer.delivery(d["id"].as_str().unwrap()).await;
                    panic!("a delivery failed: {detail}");
                }
            }
            let done: Vec<Value> = all
                .into_iter()
                .filter(|d| d["status"] == "succeeded")
                .collect();
            (done.len() == n).then_some(done)
        },
    )
    .await
}

fn assumed(port: u16) -> Vec<Value> {
    aws(port, &["assumed-roles"]).as_array().unwrap().clone()
}

#[tokio::test]
async fn aws_role_is_assumed_with_the_sub_tenants_external_id_and_rotation_takes_the_next_batch() {
    let port = free_port();
    let _moto = moto(port, Some(set_up_requests(2)));
    let key = aws(port, &["create-key"]);
    let queue = aws(port, &["create-queue", &unique("pushrail")])["queue_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let args = operator_args(port, &key);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let host = Host::start(&args).await;
    let vendor = host.create_tenant("Acme");
    let alice = vendor.session("alice").await;
    let bob = vendor.session("bob").await;
    let alice_external = external_id(&alice).await;
    let bob_external = external_id(&bob).await;
    assert_ne!(
        alice_external, bob_external,
        "one external id per sub-tenant"
    );
    assert_eq!(external_id(&alice).await, alice_external, "and it stays");

    let first = aws(port, &["create-role", &unique("alice-a"), &alice_external])["role_arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = aws(port, &["create-role", &unique("alice-b"), &alice_external])["role_arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let destination = sqs_destination(&alice, port, &queue, &first).await;
    let sent = publish(&vendor, "alice", 3).await;
    for d in wait_succeeded(&alice, 3).await {
        let detail = alice.delivery(d["id"].as_str().unwrap()).await;
        assert_eq!(outcomes(&detail), ["succeeded"], "{detail}");
    }
    let received = aws_as(port, &key, &["receive", &queue, "3"]);
    let mut got: Vec<String> = received
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let body: Value = serde_json::from_str(m["body"].as_str().unwrap()).unwrap();
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    got.sort();
    let mut want = sent.clone();
    want.sort();
    assert_eq!(got, want, "delivered with the role's temporary keys");

    let roles = assumed(port);
    assert_eq!(roles.len(), 1, "one AssumeRole, its keys reused: {roles:?}");
    assert_eq!(roles[0]["role_arn"], first.as_str());
    assert_eq!(roles[0]["external_id"], alice_external.as_str());
    assert_eq!(roles[0]["session_name"], destination.as_str());

    // Rotating the credential to another role: the next batch assumes that one.
    let credentials = alice.call("GET", "/embed/v1/credentials", None).await.1;
    let credential_id = credentials["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, rotated) = alice
        .call(
            "POST",
            &format!("/embed/v1/credentials/{credential_id}/rotate"),
            Some(json!({ "secret": { "role_arn": second } })),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    publish(&vendor, "alice", 2).await;
    wait_succeeded(&alice, 5).await;
    let roles = assumed(port);
    assert_eq!(roles.len(), 2, "{roles:?}");
    assert_eq!(roles[1]["role_arn"], second.as_str());
    assert_eq!(roles[1]["external_id"], alice_external.as_str());

    // Bob names Alice's role: it is assumed with Bob's external id, which Alice's trust policy
    // does not name, so STS refuses it.
    let bobs = sqs_destination(&bob, port, &queue, &first).await;
    publish(&vendor, "bob", 1).await;
    let refused = eventually(
        "bob's attempt",
        std::time::Duration::from_secs(30),
        || async {
            let all = bob.deliveries("").await;
            (all.len() == 1 && all[0]["status"] != "pending").then(|| all[0].clone())
        },
    )
    .await;
    let detail = bob.delivery(refused["id"].as_str().unwrap()).await;
    assert_eq!(outcomes(&detail), ["permanent_error"], "{detail}");
    let error = detail["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("AccessDenied"), "{error}");
    assert!(
        !assumed(port)
            .iter()
            .any(|r| r["session_name"] == bobs.as_str()),
        "no keys for Bob's destination"
    );
    // And Bob cannot use Alice's credential at all.
    let (status, answer) = bob
        .call(
            "POST",
            "/embed/v1/destinations",
            Some(json!({
                "type": "sqs", "name": "stolen",
                "config": { "queue_url": queue, "region": "us-east-1", "endpoint": format!("http://127.0.0.1:{port}") },
                "credential_id": credential_id,
            })),
        )
        .await;
    assert!(status == 404 || status == 422, "{status} {answer}");

    let log = host.log();
    assert!(
        !log.contains(key["secret_access_key"].as_str().unwrap()),
        "the deployment's secret key is never logged"
    );
}

#[tokio::test]
async fn aws_role_with_a_wrong_operator_key_fails_permanently_with_stss_code() {
    let port = free_port();
    let _moto = moto(port, Some(set_up_requests(1)));
    let key = aws(port, &["create-key"]);
    let queue = aws(port, &["create-queue", &unique("pushrail")])["queue_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = json!({ "access_key_id": key["access_key_id"], "secret_access_key": "wrong-operator-secret" });
    let args = operator_args(port, &wrong);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let host = Host::start(&args).await;
    let vendor = host.create_tenant("Acme");
    let alice = vendor.session("alice").await;
    let external = external_id(&alice).await;
    let role = aws(port, &["create-role", &unique("alice"), &external])["role_arn"]
        .as_str()
        .unwrap()
        .to_owned();
    sqs_destination(&alice, port, &queue, &role).await;
    publish(&vendor, "alice", 1).await;
    let failed = eventually(
        "the attempt",
        std::time::Duration::from_secs(30),
        || async {
            let all = alice.deliveries("").await;
            (all.len() == 1 && all[0]["attempt_count"] != 0).then(|| all[0].clone())
        },
    )
    .await;
    let detail = alice.delivery(failed["id"].as_str().unwrap()).await;
    assert_eq!(outcomes(&detail), ["permanent_error"], "{detail}");
    let error = detail["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("SignatureDoesNotMatch"), "{error}");
    assert!(error.contains(&role), "names the role: {error}");
    assert!(!error.contains("wrong-operator-secret"), "{error}");
}

#[tokio::test]
async fn aws_role_is_refused_when_the_deployment_has_no_aws_keys() {
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let alice = vendor.session("alice").await;
    let (status, answer) = alice.call("GET", "/embed/v1/aws-role", None).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "aws_roles_unavailable", "{answer}");
    let (status, answer) = alice
        .call(
            "POST",
            "/embed/v1/credentials",
            Some(json!({ "name": "role", "kind": "aws_role", "secret": { "role_arn": "arn:aws:iam::123456789012:role/x" } })),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "aws_roles_unavailable", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("aws_access_key"),
        "says what to use instead: {answer}"
    );
    let (_, listed) = alice.call("GET", "/embed/v1/credentials", None).await;
    assert_eq!(listed["items"], json!([]), "nothing was stored");
}
