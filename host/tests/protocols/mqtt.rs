//! `mqtt` against the Mosquitto on 127.0.0.1:1883, and a private `mosquitto` with a password file
//! for the login cases (the shared one allows anonymous clients only: `allow_anonymous true`, no
//! password file, so it accepts any password). Subscribers are paho-mqtt.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::{
    assert_batched, assert_same_events, fast_retries, free_port, outcomes, run, sample_events,
    unique, Background, Forwarder, Peer, Setup,
};

const MOSQUITTO: u16 = 1883;
const USER: &str = "pushrail";
const PASSWORD: &str = "mqtt-password-for-tests";

/// A `mosquitto` on `port` that refuses anonymous clients and knows one user.
fn private_mosquitto(port: u16) -> (Peer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    // Mosquitto started as root drops to its own user, which must be able to read the files.
    run(Command::new("chmod").arg("755").arg(dir.path()));
    let passwd = dir.path().join("passwd");
    run(Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwd)
        .args([USER, PASSWORD]));
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\npersistence false\nlog_dest stderr\n",
            passwd.display()
        ),
    )
    .unwrap();
    let mut command = Command::new("mosquitto");
    command.arg("-c").arg(&conf);
    let mut peer = Peer::spawn("mosquitto", command);
    peer.wait_for_port(port);
    (peer, dir)
}

fn by_event_id(messages: &Value) -> BTreeMap<String, (String, Value)> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["content_type"], "application/json");
            let props = &m["user_properties"];
            (
                props["pushrail-event-id"].as_str().unwrap().to_owned(),
                (
                    props["pushrail-event-type"].as_str().unwrap().to_owned(),
                    serde_json::from_str(m["payload"].as_str().unwrap()).unwrap(),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn mqtt_delivers_a_batch_at_qos_1_with_mqtt_5() {
    let topic = format!("pushrail/{}/events", unique("t"));
    let subscriber = Background::start("peer_mqtt.py", &[&MOSQUITTO.to_string(), &topic, "6"]);
    let setup = Setup::new(
        &[],
        "mqtt",
        json!({ "host": "127.0.0.1", "port": MOSQUITTO, "topic": topic }),
        None,
    )
    .await;
    let events = sample_events(6);
    let ids = setup.publish(&events).await;
    let delivered = setup.wait_for("succeeded", ids.len()).await;
    assert_batched(&delivered);
    for d in &delivered {
        assert_eq!(outcomes(d), ["succeeded"], "{d}");
        let excerpt = d["attempts"][0]["response_excerpt"].as_str().unwrap();
        assert!(
            excerpt.contains("acknowledged by the broker (QoS 1)"),
            "{excerpt}"
        );
    }
    let messages = subscriber.finish();
    assert_eq!(messages.as_array().unwrap().len(), ids.len(), "{messages}");
    for m in messages.as_array().unwrap() {
        assert_eq!(m["topic"], topic.as_str());
        assert_eq!(m["qos"], 1);
        assert_eq!(m["retain"], false);
    }
    assert_same_events(&ids, &events, &by_event_id(&messages));
}

#[tokio::test]
async fn mqtt_3_1_1_at_qos_0_delivers_the_payloads() {
    let topic = format!("pushrail/{}/v311", unique("t"));
    let subscriber = Background::start(
        "peer_mqtt.py",
        &[&MOSQUITTO.to_string(), &topic, "4", "--v311"],
    );
    let setup = Setup::new(
        &[],
        "mqtt",
        json!({ "host": "127.0.0.1", "topic": topic, "qos": 0, "protocol_version": "3.1.1" }),
        None,
    )
    .await;
    let events = sample_events(4);
    let ids = setup.publish(&events).await;
    for d in setup.wait_for("succeeded", ids.len()).await {
        let excerpt = d["attempts"][0]["response_excerpt"].as_str().unwrap();
        assert!(excerpt.contains("QoS 0"), "{excerpt}");
    }
    // MQTT 3.1.1 has no properties: the payloads arrive, the event ids do not.
    let messages = subscriber.finish();
    let mut got: Vec<Value> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| serde_json::from_str(m["payload"].as_str().unwrap()).unwrap())
        .collect();
    let mut sent: Vec<Value> = events.into_iter().map(|(_, p)| p).collect();
    got.sort_by_key(|v| v["order"].as_u64());
    sent.sort_by_key(|v| v["order"].as_u64());
    assert_eq!(got, sent);
}

#[tokio::test]
async fn mqtt_wrong_password_is_a_permanent_error() {
    let port = free_port();
    let (_mosquitto, _dir) = private_mosquitto(port);
    let setup = Setup::new(
        &fast_retries(),
        "mqtt",
        json!({ "host": "127.0.0.1", "port": port, "topic": "pushrail/events" }),
        Some((
            "basic",
            json!({ "username": USER, "password": "wrong-password" }),
        )),
    )
    .await;
    setup.publish(&sample_events(2)).await;
    for d in setup.wait_for("failed", 2).await {
        assert_eq!(outcomes(&d), ["permanent_error"], "{d}");
        let error = d["attempts"][0]["error"].as_str().unwrap();
        assert!(error.contains("not authorized (0x87)"), "{error}");
        assert!(!error.contains("wrong-password"), "no secret in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_unreachable_broker_is_retried_until_it_is_there() {
    // The broker (with its subscriber) runs on one port; the destination points at another where
    // nothing listens until a forwarder appears there.
    let broker_port = free_port();
    let (_mosquitto, _dir) = private_mosquitto(broker_port);
    let topic = format!("pushrail/{}/events", unique("t"));
    let subscriber = Background::start(
        "peer_mqtt.py",
        &[
            &broker_port.to_string(),
            &topic,
            "3",
            "--user",
            USER,
            "--password",
            PASSWORD,
        ],
    );
    let port = free_port();
    let setup = Setup::new(
        &fast_retries(),
        "mqtt",
        json!({ "host": "127.0.0.1", "port": port, "topic": topic }),
        Some(("basic", json!({ "username": USER, "password": PASSWORD }))),
    )
    .await;
    let events = sample_events(3);
    let ids = setup.publish(&events).await;
    let first = setup.first_attempt().await;
    assert_eq!(first["outcome"], "retryable_error", "{first}");
    assert!(
        first["error"].as_str().unwrap().contains("unreachable"),
        "{first}"
    );

    let _forwarder = Forwarder::start(port, broker_port).await;
    for d in setup.wait_for("succeeded", ids.len()).await {
        let outcomes = outcomes(&d);
        assert_eq!(outcomes.last().unwrap(), "succeeded");
        assert!(outcomes[..outcomes.len() - 1]
            .iter()
            .all(|o| o == "retryable_error"));
    }
    assert_same_events(&ids, &events, &by_event_id(&subscriber.finish()));
}
