"""Subscribes with paho-mqtt (PyPI), not with our own code, and prints what the mqtt destination
published.

    peer_mqtt.py PORT TOPIC N [--user U --password P] [--v311]
        subscribes to TOPIC at QoS 1, prints "ready" once the broker confirmed the subscription,
        then waits (up to 60 s) for N messages, half a second more for duplicates, and prints
        [{"topic", "qos", "retain", "payload", "content_type", "user_properties": {...}}]
"""
import argparse
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("topic")
parser.add_argument("n", type=int)
parser.add_argument("--user")
parser.add_argument("--password")
parser.add_argument("--v311", action="store_true")
args = parser.parse_args()

protocol = mqtt.MQTTv311 if args.v311 else mqtt.MQTTv5
client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=protocol)
if args.user:
    client.username_pw_set(args.user, args.password)
subscribed = threading.Event()
received = []
lock = threading.Lock()


def on_connect(client, userdata, flags, reason_code, properties):
    if reason_code.is_failure:
        print(f"connect refused: {reason_code}", file=sys.stderr)
        sys.exit(1)
    client.subscribe(args.topic, qos=1)


def on_subscribe(client, userdata, mid, reason_codes, properties):
    subscribed.set()


def on_message(client, userdata, message):
    props = message.properties
    user = dict(getattr(props, "UserProperty", []) or []) if props else {}
    with lock:
        received.append({
            "topic": message.topic,
            "qos": message.qos,
            "retain": bool(message.retain),
            "payload": message.payload.decode("utf-8"),
            "content_type": getattr(props, "ContentType", None) if props else None,
            "user_properties": user,
        })


client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect("127.0.0.1", args.port)
client.loop_start()
if not subscribed.wait(10):
    print("no SUBACK", file=sys.stderr)
    sys.exit(1)
print("ready", flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    with lock:
        if len(received) >= args.n:
            break
    time.sleep(0.05)
time.sleep(0.5)
client.loop_stop()
client.disconnect()
with lock:
    print(json.dumps(received))
