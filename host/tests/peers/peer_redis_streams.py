"""Reads back what the redis_streams destination added, with redis-py (PyPI), not with our code.

    peer_redis_streams.py PORT[/DB] STREAM [USERNAME PASSWORD]
        prints {"length": XLEN, "entries": [{"entry_id", "fields": {...}}]} for the whole stream
        (oldest first), then deletes the stream.
"""
import json
import sys

import redis

port, _, db = sys.argv[1].partition("/")
port, db, stream = int(port), int(db or 0), sys.argv[2]
username = sys.argv[3] if len(sys.argv) > 3 else None
password = sys.argv[4] if len(sys.argv) > 4 else None
client = redis.Redis(host="127.0.0.1", port=port, db=db, username=username, password=password)
entries = client.xrange(stream, "-", "+")
print(json.dumps({
    "length": client.xlen(stream),
    "entries": [
        {"entry_id": entry_id.decode(), "fields": {k.decode(): v.decode("utf-8") for k, v in fields.items()}}
        for entry_id, fields in entries
    ],
}))
client.delete(stream)
