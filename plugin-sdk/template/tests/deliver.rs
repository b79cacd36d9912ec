//! The template's plugin, built to a component and run in the real sandbox against a local peer.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use pushrail_plugin_testing::{event, FailureKind, Harness};
use serde_json::json;

#[tokio::test]
async fn delivers_a_batch_as_ndjson_and_classifies_failures() {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let app = {
        let seen = seen.clone();
        axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                seen.lock().unwrap().push((auth.clone(), body));
                if auth == "Bearer good" {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ingest", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let harness = Harness::build(env!("CARGO_MANIFEST_DIR")).await.unwrap();
    assert_eq!(harness.info().id, "my_destination");
    assert!(harness.validate(json!({ "url": url })).await.is_empty());
    assert!(!harness
        .validate(json!({ "url": "not a url" }))
        .await
        .is_empty());

    let events = vec![
        event("e1", json!({ "n": 1 })),
        event("e2", json!({ "n": 2 })),
    ];
    let delivered = harness
        .deliver(
            json!({ "url": url }),
            Some(("bearer", json!({ "token": "good" }))),
            events.clone(),
        )
        .await;
    assert_eq!(delivered.len(), 2, "one answer per event");
    for result in &delivered {
        assert_eq!(result.as_ref().unwrap().status_code, Some(200));
    }
    let body = seen.lock().unwrap()[0].1.clone();
    assert_eq!(body.lines().count(), 2);
    // The same destination again: its session stays warm.
    assert_eq!(harness.warm_sessions(), 1);

    let refused = harness
        .deliver(
            json!({ "url": url }),
            Some(("bearer", json!({ "token": "bad" }))),
            events,
        )
        .await;
    let failure = refused[0].clone().unwrap_err();
    assert_eq!(
        (failure.kind, failure.status_code),
        (FailureKind::Permanent, Some(401))
    );
}
