"""Creates JetStream streams and reads back what the nats destination published, with nats-py
(PyPI), not with our own code.

    peer_nats.py PORT add-stream STREAM SUBJECT [--user U --password P | --token T]
        creates a memory stream capturing SUBJECT; prints {"stream": STREAM}
    peer_nats.py PORT read STREAM [auth]
        prints {"messages": n, "items": [{"seq", "subject", "headers", "data"}]} and deletes STREAM
"""
import argparse
import asyncio
import json

import nats
from nats.js.api import StorageType, StreamConfig

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("command")
parser.add_argument("stream")
parser.add_argument("subject", nargs="?")
parser.add_argument("--user")
parser.add_argument("--password")
parser.add_argument("--token")
args = parser.parse_args()


async def main():
    nc = await nats.connect(
        f"nats://127.0.0.1:{args.port}",
        user=args.user,
        password=args.password,
        token=args.token,
        connect_timeout=5,
        max_reconnect_attempts=0,
    )
    js = nc.jetstream()
    if args.command == "add-stream":
        await js.add_stream(StreamConfig(name=args.stream, subjects=[args.subject], storage=StorageType.MEMORY))
        print(json.dumps({"stream": args.stream}))
    elif args.command == "read":
        info = await js.stream_info(args.stream)
        items = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(args.stream, seq)
            items.append({
                "seq": msg.seq,
                "subject": msg.subject,
                "headers": dict(msg.headers or {}),
                "data": msg.data.decode("utf-8"),
            })
        await js.delete_stream(args.stream)
        print(json.dumps({"messages": info.state.messages, "items": items}))
    await nc.close()


asyncio.run(main())
