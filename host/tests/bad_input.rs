//! Bad input gets API.md's error shape with a clear code, and nothing is half-written.

mod common;

use std::time::Duration;

use common::{eventually, Host, Receiver};
use serde_json::{json, Value};

fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    assert!(answer.1["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

fn detail_fields(answer: &(u16, Value)) -> Vec<String> {
    answer.1["error"]["details"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|x| x["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn raw(
    base: &str,
    token: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn malformed_unknown_wrong_oversized_and_unsupported_bodies() {
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let key = vendor.api_key.clone();

    assert_error(
        &raw(
            &host.base,
            &key,
            "/v1/events",
            "application/json",
            b"{\"external_id\": ".to_vec(),
        )
        .await,
        400,
        "malformed_json",
    );
    assert_error(
        &raw(&host.base, &key, "/v1/events", "text/plain", b"{}".to_vec()).await,
        415,
        "unsupported_media_type",
    );

    let unknown = vendor
        .call(
            "POST",
            "/v1/events",
            Some(json!({ "external_id": "c", "type": "a", "payload": {}, "colour": "red" })),
        )
        .await;
    assert_error(&unknown, 422, "validation_failed");
    assert!(unknown.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("colour"));

    let wrong_type = vendor
        .call(
            "POST",
            "/v1/events",
            Some(json!({ "external_id": 42, "type": "a", "payload": {} })),
        )
        .await;
    assert_error(&wrong_type, 422, "validation_failed");
    assert_eq!(detail_fields(&wrong_type), vec!["external_id"]);

    let missing = vendor
        .call(
            "POST",
            "/v1/events",
            Some(json!({ "external_id": "c", "payload": {} })),
        )
        .await;
    assert_error(&missing, 422, "validation_failed");

    let huge = json!({ "external_id": "c", "type": "a", "payload": { "blob": "x".repeat(5 * 1024 * 1024) } });
    assert_error(
        &raw(
            &host.base,
            &key,
            "/v1/events",
            "application/json",
            huge.to_string().into_bytes(),
        )
        .await,
        413,
        "payload_too_large",
    );

    let big_payload =
        json!({ "external_id": "c", "type": "a", "payload": { "blob": "x".repeat(300 * 1024) } });
    let answer = vendor.call("POST", "/v1/events", Some(big_payload)).await;
    assert_error(&answer, 422, "validation_failed");
    assert_eq!(detail_fields(&answer), vec!["payload"]);

    let bad_type = vendor
        .call(
            "POST",
            "/v1/events",
            Some(json!({ "external_id": "c", "type": "has space", "payload": {} })),
        )
        .await;
    assert_error(&bad_type, 422, "validation_failed");

    // Nothing above created an event: the customer's log is empty.
    let customer = vendor.session("c").await;
    assert!(customer.deliveries("").await.is_empty());
}

#[tokio::test]
async fn a_batch_with_one_bad_event_is_refused_whole() {
    let receiver = Receiver::start().await;
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    customer
        .create(
            "/embed/v1/destinations",
            json!({ "type": "webhook", "name": "d", "config": { "url": receiver.url } }),
        )
        .await;
    let answer = vendor
        .call(
            "POST",
            "/v1/events/batch",
            Some(json!({ "events": [
                { "external_id": "c", "type": "ok", "payload": {} },
                { "external_id": "c", "type": "", "payload": {} }
            ]})),
        )
        .await;
    assert_error(&answer, 422, "validation_failed");
    assert_eq!(detail_fields(&answer), vec!["events[1].type"]);
    assert_error(
        &vendor
            .call("POST", "/v1/events/batch", Some(json!({ "events": [] })))
            .await,
        422,
        "validation_failed",
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(customer.deliveries("").await.is_empty());
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn destinations_are_checked_against_type_schema_and_plugin() {
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;

    let unknown_type = customer
        .call(
            "POST",
            "/embed/v1/destinations",
            Some(json!({ "type": "carrier_pigeon", "name": "d", "config": {} })),
        )
        .await;
    assert_error(&unknown_type, 422, "validation_failed");
    assert_eq!(detail_fields(&unknown_type), vec!["type"]);

    let no_url = customer
        .call(
            "POST",
            "/embed/v1/destinations",
            Some(json!({ "type": "webhook", "name": "d", "config": {} })),
        )
        .await;
    assert_error(&no_url, 422, "validation_failed");
    assert_eq!(detail_fields(&no_url), vec!["config"]);

    let bad_url = customer
        .call("POST", "/embed/v1/destinations", Some(json!({ "type": "webhook", "name": "d", "config": { "url": "ftp://x", "timeout_ms": 5 } })))
        .await;
    assert_error(&bad_url, 422, "validation_failed");
    let fields = detail_fields(&bad_url);
    assert!(
        fields.contains(&"config.url".to_owned())
            && fields.contains(&"config.timeout_ms".to_owned()),
        "{fields:?}"
    );

    // The schema cannot say which headers are reserved; the plugin's own validate does.
    let reserved = customer
        .call(
            "POST",
            "/embed/v1/destinations",
            Some(json!({ "type": "webhook", "name": "d", "config": { "url": "https://example.com/h", "headers": { "Webhook-Signature": "x" } } })),
        )
        .await;
    assert_error(&reserved, 422, "validation_failed");
    assert_eq!(
        detail_fields(&reserved),
        vec!["config.headers.Webhook-Signature"]
    );

    let bad_glob = customer
        .call("POST", "/embed/v1/destinations", Some(json!({ "type": "webhook", "name": "d", "config": { "url": "https://example.com" }, "event_types": ["order.[" ] })))
        .await;
    assert_error(&bad_glob, 422, "validation_failed");
    assert_eq!(detail_fields(&bad_glob), vec!["event_types[0]"]);

    let ghost_credential = customer
        .call("POST", "/embed/v1/destinations", Some(json!({ "type": "webhook", "name": "d", "config": { "url": "https://example.com" }, "credential_id": "cred_nope" })))
        .await;
    assert_error(&ghost_credential, 404, "not_found");

    let secret = customer
        .create(
            "/embed/v1/credentials",
            json!({ "name": "k", "kind": "secret", "secret": { "value": "v" } }),
        )
        .await;
    let wrong_kind = customer
        .call("POST", "/embed/v1/destinations", Some(json!({ "type": "webhook", "name": "d", "config": { "url": "https://example.com" }, "credential_id": secret["id"] })))
        .await;
    assert_error(&wrong_kind, 422, "validation_failed");
    assert_eq!(detail_fields(&wrong_kind), vec!["credential_id"]);

    // None of the refused creates left a destination or a generated secret behind.
    let (_, list) = customer.call("GET", "/embed/v1/destinations", None).await;
    assert_eq!(list["items"], json!([]));
    let (_, credentials) = customer.call("GET", "/embed/v1/credentials", None).await;
    assert_eq!(credentials["items"].as_array().unwrap().len(), 1);

    let created = customer
        .create(
            "/embed/v1/destinations",
            json!({ "type": "webhook", "name": "d", "config": { "url": "https://example.com" } }),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let bad_patch = customer
        .call(
            "PATCH",
            &format!("/embed/v1/destinations/{id}"),
            Some(json!({ "config": { "url": 7 } })),
        )
        .await;
    assert_error(&bad_patch, 422, "validation_failed");
    let type_change = customer
        .call(
            "PATCH",
            &format!("/embed/v1/destinations/{id}"),
            Some(json!({ "type": "s3" })),
        )
        .await;
    assert_error(&type_change, 422, "validation_failed");
    let (_, unchanged) = customer
        .call("GET", &format!("/embed/v1/destinations/{id}"), None)
        .await;
    assert_eq!(unchanged["config"]["url"], "https://example.com");
}

#[tokio::test]
async fn credentials_are_checked_without_echoing_the_secret() {
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let unknown = customer
        .call(
            "POST",
            "/embed/v1/credentials",
            Some(json!({ "name": "k", "kind": "magic", "secret": {} })),
        )
        .await;
    assert_error(&unknown, 422, "validation_failed");
    let bad = customer
        .call("POST", "/embed/v1/credentials", Some(json!({ "name": "k", "kind": "webhook_secret", "secret": { "secret": "not-a-whsec-TOPSECRET" } })))
        .await;
    assert_error(&bad, 422, "validation_failed");
    assert!(
        !bad.1.to_string().contains("TOPSECRET"),
        "the error must not quote the secret: {}",
        bad.1
    );
    let missing = customer
        .call(
            "POST",
            "/embed/v1/credentials",
            Some(json!({ "name": "k", "kind": "basic", "secret": { "username": "u" } })),
        )
        .await;
    assert_error(&missing, 422, "validation_failed");
    assert_eq!(detail_fields(&missing), vec!["secret.password"]);
}

#[tokio::test]
async fn bad_queries_and_unknown_routes() {
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    assert_error(
        &customer
            .call("GET", "/embed/v1/deliveries?status=lost", None)
            .await,
        400,
        "invalid_query",
    );
    assert_error(
        &customer
            .call("GET", "/embed/v1/deliveries?limit=501", None)
            .await,
        400,
        "invalid_query",
    );
    assert_error(
        &customer
            .call("GET", "/embed/v1/deliveries?since=yesterday", None)
            .await,
        400,
        "invalid_query",
    );
    assert_error(
        &customer
            .call("GET", "/embed/v1/deliveries?cursor=zzz", None)
            .await,
        400,
        "invalid_query",
    );
    assert_error(
        &customer
            .call("GET", "/embed/v1/deliveries/dlv_nope", None)
            .await,
        404,
        "not_found",
    );
    assert_error(
        &customer.call("GET", "/embed/v1/nothing-here", None).await,
        404,
        "not_found",
    );
    assert_error(
        &customer
            .call("POST", "/embed/v1/replays", Some(json!({})))
            .await,
        422,
        "validation_failed",
    );
}

#[tokio::test]
async fn each_api_takes_only_its_own_credential() {
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let client = reqwest::Client::new();
    let embed_with_key = common::call(
        &client,
        "GET",
        &format!("{}/embed/v1/destinations", host.base),
        &vendor.api_key,
        None,
    )
    .await;
    assert_error(&embed_with_key, 401, "wrong_credential_type");
    let vendor_with_token = common::call(
        &client,
        "POST",
        &format!("{}/v1/events", host.base),
        &customer.token,
        Some(&json!({})),
    )
    .await;
    assert_error(&vendor_with_token, 401, "wrong_credential_type");
    let bad_key = common::call(
        &client,
        "GET",
        &format!("{}/v1/destination-types", host.base),
        "pr_live_nope",
        None,
    )
    .await;
    assert_error(&bad_key, 401, "invalid_api_key");
    let garbage = common::call(
        &client,
        "GET",
        &format!("{}/embed/v1/destinations", host.base),
        "a.b.c",
        None,
    )
    .await;
    assert_error(&garbage, 401, "invalid_token");
    let response = client
        .get(format!("{}/embed/v1/destinations", host.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn loopback_is_refused_without_the_allowlist() {
    let receiver = Receiver::start().await;
    let host = Host::start_with(&["--retry-schedule", "0s"]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    for url in [
        receiver.url.clone(),
        format!("http://localhost:{}/hook", receiver.port),
    ] {
        let destination = customer
            .create(
                "/embed/v1/destinations",
                json!({ "type": "webhook", "name": "d", "config": { "url": url } }),
            )
            .await;
        let id = destination["id"].as_str().unwrap();
        let (status, answer) = customer
            .call("POST", &format!("/embed/v1/destinations/{id}/test"), None)
            .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["attempt"]["outcome"], "permanent_error", "{answer}");
        assert!(
            answer["attempt"]["error"]
                .as_str()
                .unwrap()
                .contains("egress policy"),
            "{answer}"
        );
    }
    assert_eq!(receiver.count(), 0, "nothing reached the loopback receiver");
    let failed = eventually("failed deliveries", Duration::from_secs(5), || async {
        let items = customer.deliveries("?status=failed").await;
        (items.len() == 2).then_some(items)
    })
    .await;
    assert_eq!(failed.len(), 2);
}

#[tokio::test]
async fn a_disabled_destination_refuses_a_test_event() {
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let created = customer
        .create("/embed/v1/destinations", json!({ "type": "webhook", "name": "d", "config": { "url": "https://example.com" }, "enabled": false }))
        .await;
    let id = created["id"].as_str().unwrap();
    assert_error(
        &customer
            .call("POST", &format!("/embed/v1/destinations/{id}/test"), None)
            .await,
        409,
        "destination_disabled",
    );
    assert!(
        customer.deliveries("").await.is_empty(),
        "nothing was logged"
    );
}

#[tokio::test]
async fn a_customer_has_at_most_a_hundred_destinations() {
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let body = json!({ "type": "webhook", "name": "d", "config": { "url": "https://example.com" }, "enabled": false });
    for _ in 0..95 {
        customer
            .create("/embed/v1/destinations", body.clone())
            .await;
    }
    // Sixteen creates at once for the last five places: exactly five get one.
    let answers = futures::future::join_all(
        (0..16).map(|_| customer.call("POST", "/embed/v1/destinations", Some(body.clone()))),
    )
    .await;
    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(created, 5, "{statuses:?}");
    for (status, answer) in answers.iter().filter(|(status, _)| *status != 201) {
        assert_eq!(*status, 409, "{answer}");
        assert_eq!(answer["error"]["code"], "destination_limit_reached");
    }
    assert_error(
        &customer
            .call("POST", "/embed/v1/destinations", Some(body))
            .await,
        409,
        "destination_limit_reached",
    );
    let (_, list) = customer.call("GET", "/embed/v1/destinations", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn text_the_store_cannot_hold_or_reserved_names_are_refused() {
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    for external_id in ["nul\u{0}inside", "deleted:sub_123"] {
        let session = vendor
            .call(
                "POST",
                "/v1/sessions",
                Some(json!({ "external_id": external_id })),
            )
            .await;
        assert_error(&session, 422, "validation_failed");
        let event = vendor
            .call(
                "POST",
                "/v1/events",
                Some(json!({ "external_id": external_id, "type": "a", "payload": {} })),
            )
            .await;
        assert_error(&event, 422, "validation_failed");
        assert_eq!(detail_fields(&event), vec!["external_id"]);
    }
    let customer = vendor.session("c").await;
    let named = customer
        .call("POST", "/embed/v1/destinations", Some(json!({ "type": "webhook", "name": "a\u{0}b", "config": { "url": "https://example.com" } })))
        .await;
    assert_error(&named, 422, "validation_failed");
    // A payload may hold any JSON string, NUL included: it is stored as JSON text.
    let answer = vendor.publish("c", "a", json!({ "text": "a\u{0}b" })).await;
    assert!(answer["event_id"].is_string());
}
