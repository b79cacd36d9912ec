"""Creates topics and reads back what the kafka destination produced, with kafka-python (PyPI),
not with our own code.

    peer_kafka.py PORT create-topic TOPIC PARTITIONS
    peer_kafka.py PORT consume TOPIC N
        reads every partition from the beginning until N records arrived (up to 30 s), half a
        second more for duplicates, and prints [{"partition", "offset", "key", "value", "headers",
        "timestamp", "expected_partition"}]; expected_partition is where kafka-python's default
        partitioner (murmur2, as Java's) puts the key.
"""
import argparse
import json
import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.partitioner.default import murmur2

parser = argparse.ArgumentParser()
parser.add_argument("port", type=int)
parser.add_argument("command")
parser.add_argument("topic")
parser.add_argument("n", type=int)
args = parser.parse_args()

common = {"bootstrap_servers": f"127.0.0.1:{args.port}", "request_timeout_ms": 10000}

if args.command == "create-topic":
    admin = KafkaAdminClient(**common)
    admin.create_topics([NewTopic(args.topic, num_partitions=args.n, replication_factor=1)])
    admin.close()
    print(json.dumps({"topic": args.topic}))
elif args.command == "consume":
    consumer = KafkaConsumer(**common, enable_auto_commit=False, consumer_timeout_ms=500)
    deadline = time.monotonic() + 30
    partitions = None
    while partitions is None and time.monotonic() < deadline:
        partitions = consumer.partitions_for_topic(args.topic)
    partitions = sorted(partitions)
    consumer.assign([TopicPartition(args.topic, p) for p in partitions])
    consumer.seek_to_beginning()
    records = []
    while time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=500)
        for items in batch.values():
            records.extend(items)
        if len(records) >= args.n:
            extra = consumer.poll(timeout_ms=500)
            for items in extra.values():
                records.extend(items)
            break
    consumer.close()

    def expected_partition(key):
        # kafka-python's DefaultPartitioner.partition, which Java's default partitioner matches.
        return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]

    print(json.dumps([
        {
            "partition": r.partition,
            "offset": r.offset,
            "key": r.key.decode("utf-8") if r.key is not None else None,
            "value": r.value.decode("utf-8"),
            "headers": {k: v.decode("utf-8") for k, v in r.headers},
            "timestamp": r.timestamp,
            "expected_partition": expected_partition(r.key),
        }
        for r in records
    ]))
