"""Reads back what the rabbitmq destination published, with pika (PyPI), not with our own code.

    peer_rabbitmq.py declare QUEUE   declares QUEUE on 127.0.0.1:5672 (guest/guest); prints {"queue": QUEUE}
    peer_rabbitmq.py drain QUEUE N   takes N messages (waiting up to 30 s), deletes QUEUE, prints
                                [{"message_id", "type", "content_type", "delivery_mode", "timestamp",
                                  "app_id", "body"}]
"""
import json
import sys
import time

import pika

PARAMS = pika.ConnectionParameters("127.0.0.1", 5672, "/", pika.PlainCredentials("guest", "guest"))

command, queue = sys.argv[1], sys.argv[2]
connection = pika.BlockingConnection(PARAMS)
channel = connection.channel()
if command == "declare":
    # Left-over queues of an interrupted run expire on their own.
    channel.queue_declare(queue, durable=True, arguments={"x-expires": 600_000})
    print(json.dumps({"queue": queue}))
elif command == "drain":
    want = int(sys.argv[3])
    messages = []
    deadline = time.monotonic() + 30
    while len(messages) < want and time.monotonic() < deadline:
        method, props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            time.sleep(0.1)
            continue
        messages.append({
            "message_id": props.message_id,
            "type": props.type,
            "content_type": props.content_type,
            "delivery_mode": props.delivery_mode,
            "timestamp": props.timestamp,
            "app_id": props.app_id,
            "body": body.decode("utf-8"),
        })
    # Anything beyond N is a duplicate the test must see too.
    time.sleep(0.2)
    while True:
        method, props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        messages.append({"message_id": props.message_id, "type": props.type, "body": body.decode("utf-8")})
    channel.queue_delete(queue)
    print(json.dumps(messages))
connection.close()
