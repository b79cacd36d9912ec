//! `eventbridge` against moto server started by each test on a free port: a bus with a rule that
//! targets an SQS queue, and what the rule delivered read back with boto3.

use serde_json::{json, Value};

use crate::support::{
    assert_same_events, aws, free_port, moto, outcomes, sample_events, unique, Setup,
};

#[tokio::test]
async fn eventbridge_puts_events_on_a_bus_whose_rule_delivers_them_to_sqs() {
    let port = free_port();
    let _moto = moto(port, None);
    let queue = aws(port, &["create-queue", &unique("pushrail")])["queue_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let bus = unique("pushrail-bus");
    aws(port, &["create-bus-rule", &bus, &queue]);
    let setup = Setup::new(
        &[],
        "eventbridge",
        json!({
            "event_bus_name": bus, "region": "us-east-1",
            "endpoint": format!("http://127.0.0.1:{port}"),
        }),
        Some((
            "aws_access_key",
            json!({ "access_key_id": "AKIDPUSHRAILTEST", "secret_access_key": "not-checked-here" }),
        )),
    )
    .await;
    let events = sample_events(4);
    let ids = setup.publish(&events).await;
    for d in setup.wait_for("succeeded", ids.len()).await {
        assert_eq!(outcomes(&d), ["succeeded"], "{d}");
    }
    let messages = aws(port, &["receive", &queue, &ids.len().to_string()]);
    let received = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let event: Value = serde_json::from_str(m["body"].as_str().unwrap()).unwrap();
            assert_eq!(event["source"], "pushrail", "{event}");
            let detail = &event["detail"];
            assert_eq!(event["detail-type"], detail["type"], "{event}");
            (
                detail["id"].as_str().unwrap().to_owned(),
                (
                    detail["type"].as_str().unwrap().to_owned(),
                    detail["payload"].clone(),
                ),
            )
        })
        .collect();
    assert_same_events(&ids, &events, &received);
}

#[tokio::test]
async fn eventbridge_an_entry_over_256_kib_fails_alone_and_its_batch_mates_are_put_once() {
    let port = free_port();
    let _moto = moto(port, None);
    let queue = aws(port, &["create-queue", &unique("pushrail")])["queue_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let bus = unique("pushrail-bus");
    aws(port, &["create-bus-rule", &bus, &queue]);
    let setup = Setup::new(
        &[],
        "eventbridge",
        json!({
            "event_bus_name": bus, "region": "us-east-1",
            "endpoint": format!("http://127.0.0.1:{port}"),
        }),
        Some((
            "aws_access_key",
            json!({ "access_key_id": "AKIDPUSHRAILTEST", "secret_access_key": "not-checked-here" }),
        )),
    )
    .await;
    // A payload the API takes (under 256 KiB) whose entry, with the record around it, the
    // source and the detail type, is over EventBridge's 256 KiB.
    let mut events = sample_events(4);
    events[1].1 = json!({ "blob": "x".repeat(262_100) });
    let ids = setup.publish(&events).await;
    let settled = setup.settle(ids.len()).await;
    for d in &settled {
        let refused = d["event_id"] == ids[1].as_str();
        assert_eq!(
            d["status"],
            if refused { "failed" } else { "succeeded" },
            "{d}"
        );
        let detail = setup.customer.delivery(d["id"].as_str().unwrap()).await;
        if refused {
            assert_eq!(outcomes(&detail), ["permanent_error"], "{detail}");
            let error = detail["attempts"][0]["error"].as_str().unwrap();
            assert!(
                error.contains("the entry is"),
                "refused for its size: {error}"
            );
        }
    }
    let messages = aws(port, &["receive", &queue, "3"]);
    let delivered: Vec<String> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let event: Value = serde_json::from_str(m["body"].as_str().unwrap()).unwrap();
            event["detail"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let mut expected: Vec<String> = ids.clone();
    expected.remove(1);
    let mut got = delivered.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "the three others, each once");
}
