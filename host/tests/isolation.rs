//! Tenants and sub-tenants see only their own data; sessions are short-lived and revocable.

mod common;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{call, database, eventually, Host, Receiver, Session, Tenant};
use serde_json::{json, Value};

/// Everything one sub-tenant owns, by id.
struct Owned {
    external_id: String,
    session: Session,
    destination: String,
    credential: String,
    delivery: String,
}

async fn populate(vendor: &Tenant, external_id: &str, receiver: &Receiver) -> Owned {
    let session = vendor.session(external_id).await;
    let credential = session
        .create("/embed/v1/credentials", json!({ "name": "k", "kind": "bearer", "secret": { "token": format!("tok-{external_id}") } }))
        .await;
    let destination = session
        .create(
            "/embed/v1/destinations",
            json!({ "type": "webhook", "name": external_id, "config": { "url": receiver.url }, "credential_id": credential["id"] }),
        )
        .await;
    vendor
        .publish(
            external_id,
            "order.created",
            json!({ "owner": external_id }),
        )
        .await;
    let delivery = eventually("a delivery", Duration::from_secs(10), || async {
        session
            .deliveries("?status=succeeded")
            .await
            .into_iter()
            .next()
    })
    .await;
    Owned {
        external_id: external_id.to_owned(),
        destination: destination["id"].as_str().unwrap().to_owned(),
        credential: credential["id"].as_str().unwrap().to_owned(),
        delivery: delivery["id"].as_str().unwrap().to_owned(),
        session,
    }
}

/// What a sub-tenant's data looks like from its own session; must not change under attack.
async fn snapshot(owned: &Owned) -> Value {
    let (_, destinations) = owned
        .session
        .call("GET", "/embed/v1/destinations", None)
        .await;
    let (_, credentials) = owned
        .session
        .call("GET", "/embed/v1/credentials", None)
        .await;
    let (_, delivery) = owned
        .session
        .call(
            "GET",
            &format!("/embed/v1/deliveries/{}", owned.delivery),
            None,
        )
        .await;
    json!({ "destinations": destinations, "credentials": credentials, "delivery": delivery })
}

/// One page of a session's own audit trail.
async fn audit_page(session: &Session, query: &str) -> Value {
    let (status, body) = session
        .call("GET", &format!("/embed/v1/audit{query}"), None)
        .await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

fn audit_actions(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

fn expect_404(answer: &(u16, Value), what: &str) {
    assert_eq!(answer.0, 404, "{what}: {}", answer.1);
    assert_eq!(answer.1["error"]["code"], "not_found", "{what}");
}

#[tokio::test]
async fn foreign_ids_answer_404_and_change_nothing() {
    let receiver = Receiver::start().await;
    let host = Host::start(&[]).await;
    let acme = host.create_tenant("Acme");
    let globex = host.create_tenant("Globex");
    let owners = vec![
        populate(&acme, "acme-a", &receiver).await,
        populate(&acme, "acme-b", &receiver).await,
        populate(&globex, "globex-a", &receiver).await,
        populate(&globex, "globex-b", &receiver).await,
    ];
    let before: Vec<Value> = futures::future::join_all(owners.iter().map(snapshot)).await;
    let vendors = [&acme, &acme, &globex, &globex];

    for (i, me) in owners.iter().enumerate() {
        let own_destination = &me.destination;
        for (j, them) in owners.iter().enumerate() {
            if i == j {
                continue;
            }
            let s = &me.session;
            let d = &them.destination;
            let c = &them.credential;
            expect_404(
                &s.call("GET", &format!("/embed/v1/destinations/{d}"), None)
                    .await,
                "get destination",
            );
            expect_404(
                &s.call(
                    "PATCH",
                    &format!("/embed/v1/destinations/{d}"),
                    Some(json!({ "name": "mine" })),
                )
                .await,
                "patch destination",
            );
            expect_404(
                &s.call("DELETE", &format!("/embed/v1/destinations/{d}"), None)
                    .await,
                "delete destination",
            );
            expect_404(
                &s.call("POST", &format!("/embed/v1/destinations/{d}/test"), None)
                    .await,
                "test destination",
            );
            expect_404(
                &s.call(
                    "POST",
                    &format!("/embed/v1/credentials/{c}/rotate"),
                    Some(json!({ "secret": { "token": "stolen" } })),
                )
                .await,
                "rotate credential",
            );
            expect_404(
                &s.call("DELETE", &format!("/embed/v1/credentials/{c}"), None)
                    .await,
                "delete credential",
            );
            expect_404(
                &s.call(
                    "GET",
                    &format!("/embed/v1/deliveries/{}", them.delivery),
                    None,
                )
                .await,
                "get delivery",
            );
            expect_404(
                &s.call(
                    "POST",
                    "/embed/v1/replays",
                    Some(json!({ "delivery_id": them.delivery })),
                )
                .await,
                "replay delivery",
            );
            expect_404(
                &s.call("POST", "/embed/v1/replays", Some(json!({ "since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z", "destination_id": d, "status": "succeeded" }))).await,
                "replay window of a foreign destination",
            );
            // A destination can never reference another sub-tenant's credential, whoever asks.
            expect_404(
                &s.call("POST", "/embed/v1/destinations", Some(json!({ "type": "webhook", "name": "x", "config": { "url": receiver.url }, "credential_id": c }))).await,
                "create with foreign credential",
            );
            expect_404(
                &s.call(
                    "PATCH",
                    &format!("/embed/v1/destinations/{own_destination}"),
                    Some(json!({ "credential_id": c })),
                )
                .await,
                "patch to foreign credential",
            );
            let filtered = s.deliveries(&format!("?destination_id={d}")).await;
            assert!(
                filtered.is_empty(),
                "a foreign destination filter shows nothing"
            );
        }
        let listed = me.session.deliveries("").await;
        assert!(
            listed
                .iter()
                .all(|d| d["destination_id"] == me.destination.as_str()),
            "only own deliveries listed"
        );
    }

    // Vendors: a tenant never reaches another tenant's sub-tenants or sessions.
    for (i, them) in owners.iter().enumerate() {
        let other_vendor = if vendors[i].id == acme.id {
            &globex
        } else {
            &acme
        };
        expect_404(
            &other_vendor
                .call(
                    "GET",
                    &format!("/v1/sub-tenants/{}/deliveries", them.external_id),
                    None,
                )
                .await,
            "operator view",
        );
        expect_404(
            &other_vendor
                .call(
                    "POST",
                    &format!("/v1/sub-tenants/{}/revoke-sessions", them.external_id),
                    None,
                )
                .await,
            "revoke sessions",
        );
        expect_404(
            &other_vendor
                .call("DELETE", &format!("/v1/sessions/{}", them.session.id), None)
                .await,
            "revoke session",
        );
        expect_404(
            &other_vendor
                .call(
                    "DELETE",
                    &format!("/v1/sub-tenants/{}", them.external_id),
                    None,
                )
                .await,
            "delete sub-tenant",
        );
        let (status, own_view) = vendors[i]
            .call(
                "GET",
                &format!("/v1/sub-tenants/{}/deliveries", them.external_id),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            own_view["items"].as_array().unwrap().len(),
            1,
            "the owner's operator view sees it"
        );
    }

    let after: Vec<Value> = futures::future::join_all(owners.iter().map(snapshot)).await;
    assert_eq!(before, after, "no foreign request changed anything");
    for owned in &owners {
        assert_eq!(
            snapshot(owned).await["credentials"]["items"][0]["rotated_at"],
            Value::Null
        );
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Registers an Ed25519 key of the test's own with the host (as a retired key, which verifies but
/// never signs), so the test can sign tokens with arbitrary claims.
async fn register_test_key(host: &Host, kid: &str) -> jsonwebtoken::EncodingKey {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let db = database(host).await;
    sqlx::query("INSERT INTO signing_keys (kid, private_key, public_key, created_at, retired_at) VALUES ($1, $2, $3, $4, $4)")
        .bind(kid)
        .bind(b"{}".to_vec())
        .bind(signing.verifying_key().to_bytes().to_vec())
        .bind(now_secs() * 1000)
        .execute(&db)
        .await
        .unwrap();
    jsonwebtoken::EncodingKey::from_ed_der(signing.to_pkcs8_der().unwrap().as_bytes())
}

fn sign(key: &jsonwebtoken::EncodingKey, kid: &str, claims: Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

#[tokio::test]
async fn bad_tokens_answer_401_with_a_clear_code() {
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let client = reqwest::Client::new();
    let url = format!("{}/embed/v1/destinations", host.base);
    let check = |token: String, code: &'static str| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let (status, body) = call(&client, "GET", &url, &token, None).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (401, Some(code)),
                "{body}"
            );
        }
    };

    let test_kid = "sk_test_key";
    let key = register_test_key(&host, test_kid).await;
    let claims = |iat: i64, exp: i64| json!({ "iss": "pushrail", "sub": customer.sub_tenant_id, "sid": customer.id, "iat": iat, "exp": exp });
    let now = now_secs();
    // The crafted path works when the claims are good, so the refusals below are about the claims.
    let good = sign(&key, test_kid, claims(now, now + 60));
    let (status, _) = call(&client, "GET", &url, &good, None).await;
    assert_eq!(status, 200);

    check(
        sign(&key, test_kid, claims(now - 120, now - 60)),
        "token_expired",
    )
    .await;
    check(
        sign(&key, test_kid, claims(now + 600, now + 900)),
        "token_not_yet_valid",
    )
    .await;
    check(
        sign(&key, "sk_unknown", claims(now, now + 60)),
        "unknown_signing_key",
    )
    .await;

    let real_header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(customer.token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    let real_kid = real_header["kid"].as_str().unwrap().to_owned();
    let body = URL_SAFE_NO_PAD.encode(claims(now, now + 60).to_string());

    let mut parts: Vec<String> = customer.token.split('.').map(str::to_owned).collect();
    let mut signature = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
    signature[10] ^= 0x01;
    parts[2] = URL_SAFE_NO_PAD.encode(signature);
    check(parts.join("."), "invalid_token").await;

    let none_header =
        URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT", "kid": real_kid }).to_string());
    check(format!("{none_header}.{body}."), "invalid_token").await;

    // HS256 keyed with the published public key: the classic algorithm-confusion forgery.
    let (_, jwks) = call(
        &client,
        "GET",
        &format!("{}/.well-known/jwks.json", host.base),
        "",
        None,
    )
    .await;
    let public = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == real_kid.as_str())
        .unwrap()["x"]
        .as_str()
        .unwrap()
        .to_owned();
    let hs_header = URL_SAFE_NO_PAD
        .encode(json!({ "alg": "HS256", "typ": "JWT", "kid": real_kid }).to_string());
    let signing_input = format!("{hs_header}.{body}");
    for secret in [
        public.as_bytes().to_vec(),
        URL_SAFE_NO_PAD.decode(&public).unwrap(),
    ] {
        use hmac::Mac as _;
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&secret).unwrap();
        mac.update(signing_input.as_bytes());
        let forged = format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        );
        check(forged, "invalid_token").await;
    }

    let other = vendor.session("c").await;
    let (status, _) = vendor
        .call("DELETE", &format!("/v1/sessions/{}", other.id), None)
        .await;
    assert_eq!(status, 204);
    check(other.token.clone(), "session_revoked").await;

    let doomed = vendor.session("leaving").await;
    let (status, _) = vendor.call("DELETE", "/v1/sub-tenants/leaving", None).await;
    assert_eq!(status, 204);
    check(doomed.token.clone(), "session_revoked").await;

    // A session for a made-up sid, correctly signed, is refused too.
    let ghost = json!({ "iss": "pushrail", "sub": customer.sub_tenant_id, "sid": "ses_ghost", "iat": now, "exp": now + 60 });
    check(sign(&key, test_kid, ghost), "invalid_token").await;
    // And a real sid presented for another sub-tenant.
    let swapped = json!({ "iss": "pushrail", "sub": doomed.sub_tenant_id, "sid": customer.id, "iat": now, "exp": now + 60 });
    check(sign(&key, test_kid, swapped), "invalid_token").await;
}

#[tokio::test]
async fn session_lifetimes_are_bounded() {
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    for ttl in [0, 3601] {
        let (status, body) = vendor
            .call(
                "POST",
                "/v1/sessions",
                Some(json!({ "external_id": "c", "ttl_seconds": ttl })),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("validation_failed"))
        );
    }
    let (status, body) = vendor
        .call("POST", "/v1/sessions", Some(json!({ "external_id": "c" })))
        .await;
    assert_eq!(status, 201);
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(body["token"].as_str().unwrap().split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let mut keys: Vec<_> = payload.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["exp", "iat", "iss", "sid", "sub"],
        "claims exactly as API.md, nothing else"
    );
    assert_eq!(
        payload["exp"].as_i64().unwrap() - payload["iat"].as_i64().unwrap(),
        900
    );
}

#[tokio::test]
async fn revocation_counts_from_the_very_next_request() {
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let customer = vendor.session("c").await;
    let url = format!("{}/embed/v1/destinations", host.base);
    let token = customer.token.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let looping = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let (status, _) = call(&client, "GET", &url, &token, None).await;
                seen.push((started, status));
            }
            seen
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, body) = vendor
        .call("POST", "/v1/sub-tenants/c/revoke-sessions", None)
        .await;
    assert_eq!((status, body["revoked"].as_i64()), (200, Some(1)));
    let revoked_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = looping.await.unwrap();
    let before: Vec<_> = seen.iter().filter(|(at, _)| *at < revoked_at).collect();
    let after: Vec<_> = seen.iter().filter(|(at, _)| *at >= revoked_at).collect();
    assert!(
        before.iter().any(|(_, s)| *s == 200),
        "the session worked before"
    );
    assert!(!after.is_empty(), "requests ran after the revocation");
    assert!(
        after.iter().all(|(_, s)| *s == 401),
        "every request after the revocation answer is refused"
    );
}

#[tokio::test]
async fn every_mutation_is_audited_for_its_own_customer() {
    let receiver = Receiver::start().await;
    let host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let owner = populate(&vendor, "a", &receiver).await;
    let other = vendor.session("b").await;
    owner
        .session
        .call(
            "POST",
            &format!("/embed/v1/credentials/{}/rotate", owner.credential),
            Some(json!({ "secret": { "token": "new" } })),
        )
        .await;
    owner
        .session
        .call(
            "POST",
            "/embed/v1/replays",
            Some(json!({ "delivery_id": owner.delivery })),
        )
        .await;
    let (status, audit) = owner
        .session
        .call("GET", "/embed/v1/audit?limit=100", None)
        .await;
    assert_eq!(status, 200, "{audit}");
    let actions: Vec<_> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    for expected in [
        "session.issue",
        "credential.create",
        "destination.create",
        "credential.rotate",
        "replay.create",
    ] {
        assert!(
            actions.contains(&expected.to_owned()),
            "{expected} missing from {actions:?}"
        );
    }
    let entry = &audit["items"][0];
    assert!(
        entry["at"].is_string()
            && entry["actor"].as_str().unwrap().starts_with("session:")
            && entry["target"].is_string()
    );
    let (_, theirs) = other.call("GET", "/embed/v1/audit", None).await;
    let their_actions: Vec<_> = theirs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(
        their_actions,
        vec![json!("session.issue")],
        "another customer sees only its own"
    );

    // Filters: one action, a family of actions, a time window; each only within the scope.
    let rotated = audit_page(&owner.session, "?action=credential.rotate").await;
    assert_eq!(audit_actions(&rotated), vec!["credential.rotate"]);
    assert_eq!(rotated["items"][0]["target"], json!(owner.credential));
    let credentials = audit_page(&owner.session, "?action=credential.*").await;
    assert_eq!(
        audit_actions(&credentials),
        vec!["credential.rotate", "credential.create"],
        "newest first"
    );
    // A family's name is matched as a word, not as a LIKE pattern.
    let none = audit_page(&owner.session, "?action=c_edential.*").await;
    assert_eq!(audit_actions(&none), Vec::<String>::new());
    // Paged with the filter kept.
    let first = audit_page(&owner.session, "?action=credential.*&limit=1").await;
    assert_eq!(audit_actions(&first), vec!["credential.rotate"]);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = audit_page(
        &owner.session,
        &format!("?action=credential.*&limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(audit_actions(&second), vec!["credential.create"]);
    assert!(second["next_cursor"].is_null());
    assert_eq!(
        audit_actions(&audit_page(&other, "?action=credential.*").await),
        Vec::<String>::new(),
        "another customer's filter finds none of these"
    );

    let rotated_at = rotated["items"][0]["at"].as_str().unwrap().to_owned();
    let since = audit_page(&owner.session, &format!("?limit=100&since={rotated_at}")).await;
    let since_actions = audit_actions(&since);
    assert!(
        since_actions.contains(&"credential.rotate".to_owned())
            && since_actions.contains(&"replay.create".to_owned()),
        "{since_actions:?}"
    );
    assert!(
        !since_actions.contains(&"session.issue".to_owned()),
        "{since_actions:?}"
    );
    let until = audit_page(&owner.session, &format!("?limit=100&until={rotated_at}")).await;
    let until_actions = audit_actions(&until);
    assert!(
        until_actions.contains(&"session.issue".to_owned())
            && until_actions.contains(&"destination.create".to_owned()),
        "{until_actions:?}"
    );
    assert!(
        !until_actions.contains(&"credential.rotate".to_owned()),
        "{until_actions:?}"
    );
    let parse = |at: &str| {
        time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap()
    };
    for item in until["items"].as_array().unwrap() {
        assert!(
            parse(item["at"].as_str().unwrap()) < parse(&rotated_at),
            "{item}"
        );
    }
    for item in since["items"].as_array().unwrap() {
        assert!(
            parse(item["at"].as_str().unwrap()) >= parse(&rotated_at),
            "{item}"
        );
    }

    for bad in [
        "?action=Credential.rotate",
        "?action=credential.",
        "?action=credential%25",
        "?since=yesterday",
        "?until=2026-13-01T00:00:00Z",
    ] {
        let (status, body) = owner
            .session
            .call("GET", &format!("/embed/v1/audit{bad}"), None)
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_query", "{bad}");
    }
}

#[tokio::test]
async fn a_tenant_over_its_rate_gets_429_with_retry_after() {
    let host = Host::start(&["--rate-limit", "5"]).await;
    let vendor = host.create_tenant("Acme");
    let neighbour = host.create_tenant("Neighbour");
    let client = reqwest::Client::new();
    let mut limited = None;
    for _ in 0..40 {
        let response = client
            .get(format!("{}/v1/destination-types", host.base))
            .bearer_auth(&vendor.api_key)
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let response = limited.expect("the limit was reached");
    assert!(response.headers().get("retry-after").is_some());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    let (status, _) = neighbour.call("GET", "/v1/destination-types", None).await;
    assert_eq!(status, 200, "another tenant is unaffected");
}

#[tokio::test]
async fn a_customers_dashboard_cannot_get_the_vendors_ingest_or_another_dashboard_throttled() {
    let host = Host::start(&["--rate-limit", "5"]).await;
    let vendor = host.create_tenant("Acme");
    let noisy = vendor.session("noisy").await;
    let quiet = vendor.session("quiet").await;
    let mut refused = 0;
    for _ in 0..40 {
        let (status, _) = noisy.call("GET", "/embed/v1/destinations", None).await;
        if status == 429 {
            refused += 1;
        }
    }
    assert!(refused > 0, "the noisy dashboard hit its own limit");
    let (status, answer) = vendor
        .call(
            "POST",
            "/v1/events",
            Some(json!({ "external_id": "quiet", "type": "order.created", "payload": {} })),
        )
        .await;
    assert_eq!(
        status, 202,
        "the vendor's ingest has its own bucket: {answer}"
    );
    let (status, _) = quiet.call("GET", "/embed/v1/destinations", None).await;
    assert_eq!(
        status, 200,
        "another customer's dashboard has its own bucket"
    );
}

/// A tenant's own limits, set by the operator with `pushrail tenant limits`, apply to that tenant
/// alone (its vendor API, and its customers' dashboards each), are taken up without a restart,
/// and go back to the host's default when set to 0.
#[tokio::test]
async fn a_tenants_own_rate_limits_apply_to_it_alone() {
    let host = Host::start(&["--rate-limit", "1000"]).await;
    let vendor = host.create_tenant("Acme");
    let neighbour = host.create_tenant("Neighbour");
    let set_limits = |rate: &str, embed: &str| {
        let out = host
            .command()
            .args([
                "tenant",
                "limits",
                &vendor.id,
                "--rate-limit",
                rate,
                "--embed-rate-limit",
                embed,
            ])
            .env("PUSHRAIL_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(
        set_limits("2", "3"),
        json!({ "tenant_id": vendor.id, "rate_limit": 2, "embed_rate_limit": 3 })
    );
    let refused = |answers: Vec<u16>| answers.iter().filter(|s| **s == 429).count();
    // Sessions are minted through the vendor API: before its bucket runs dry.
    let customer = vendor.session("c").await;
    let other_customer = neighbour.session("c").await;
    let mut vendor_answers = Vec::new();
    let mut neighbour_answers = Vec::new();
    for _ in 0..12 {
        vendor_answers.push(vendor.call("GET", "/v1/destination-types", None).await.0);
        neighbour_answers.push(neighbour.call("GET", "/v1/destination-types", None).await.0);
    }
    assert!(
        refused(vendor_answers.clone()) > 0,
        "Acme's own limit (2/s, burst 4): {vendor_answers:?}"
    );
    assert_eq!(
        refused(neighbour_answers.clone()),
        0,
        "the neighbour keeps the default: {neighbour_answers:?}"
    );

    let mut embed_answers = Vec::new();
    let mut other_answers = Vec::new();
    for _ in 0..14 {
        embed_answers.push(customer.call("GET", "/embed/v1/destinations", None).await.0);
        other_answers.push(
            other_customer
                .call("GET", "/embed/v1/destinations", None)
                .await
                .0,
        );
    }
    assert!(
        refused(embed_answers.clone()) > 0,
        "Acme's embed limit (3/s, burst 6): {embed_answers:?}"
    );
    assert_eq!(refused(other_answers.clone()), 0, "{other_answers:?}");

    // Back to the host's default, at once.
    set_limits("0", "0");
    let mut after = Vec::new();
    for _ in 0..12 {
        after.push(vendor.call("GET", "/v1/destination-types", None).await.0);
    }
    assert_eq!(refused(after.clone()), 0, "{after:?}");
}

/// The limit admits the burst and then the configured rate, on either store (the PostgreSQL
/// buckets live in the database): over a measured span, never more than burst + rate * span.
#[tokio::test]
async fn the_rate_limit_admits_the_burst_then_the_rate() {
    let host = Host::start(&["--rate-limit", "5"]).await;
    let vendor = host.create_tenant("Acme");
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let mut admitted = 0u32;
    while started.elapsed() < std::time::Duration::from_secs(3) {
        let response = client
            .get(format!("{}/v1/destination-types", host.base))
            .bearer_auth(&vendor.api_key)
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => admitted += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    let span = started.elapsed().as_secs_f64();
    // Burst 10 (twice the rate), then 5 a second.
    let most = 10.0 + 5.0 * span + 1.0;
    println!("admitted {admitted} in {span:.2} s (at most {most:.1})");
    assert!(
        f64::from(admitted) <= most,
        "admitted {admitted} in {span:.2} s"
    );
    assert!(admitted >= 10, "the burst is admitted: {admitted}");
}

#[tokio::test]
async fn rotating_the_signing_key_keeps_live_tokens_valid() {
    let mut host = Host::start(&[]).await;
    let vendor = host.create_tenant("Acme");
    let before = vendor.session("c").await;
    let kid = |token: &str| -> String {
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        header["kid"].as_str().unwrap().to_owned()
    };
    let out = host
        .command()
        .args(["keys", "rotate-signing"])
        .env("PUSHRAIL_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
    host.restart().await;

    let (status, _) = before.call("GET", "/embed/v1/destinations", None).await;
    assert_eq!(
        status, 200,
        "a token signed before the rotation stays valid"
    );
    let after = vendor.session("c").await;
    assert_eq!(
        kid(&after.token),
        rotated["signing_kid"].as_str().unwrap(),
        "new sessions use the new key"
    );
    assert_ne!(kid(&after.token), kid(&before.token));
    let (_, jwks) = call(
        &reqwest::Client::new(),
        "GET",
        &format!("{}/.well-known/jwks.json", host.base),
        "",
        None,
    )
    .await;
    let published: Vec<_> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        published.contains(&kid(&before.token)) && published.contains(&kid(&after.token)),
        "{published:?}"
    );
}
