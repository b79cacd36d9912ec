"""Sets up and reads back the AWS destinations' local peer, moto server, with boto3 (PyPI), not
with our own code. The first argument is moto's port on 127.0.0.1.

    peer_aws.py PORT create-queue NAME         creates queue NAME (FIFO when it ends in .fifo);
                                               prints {"queue_url"}
    peer_aws.py PORT receive QUEUE_URL N       receives N messages (waiting up to 30 s), then
                                               waits 2 s more for any extra; prints
                                               [{"body", "attributes", "group_id"}]
    peer_aws.py PORT create-stream NAME        creates Kinesis stream NAME with 2 shards;
                                               prints {"stream": NAME}
    peer_aws.py PORT read-stream NAME N        reads every shard from the start until N records
                                               (waiting up to 30 s); prints [{"data",
                                               "partition_key", "shard"}]
    peer_aws.py PORT create-bus-rule BUS QUEUE_URL
                                               creates EventBridge bus BUS (unless it is
                                               default) and a rule on it matching every event
                                               (any source) that targets the queue; prints
                                               {"bus": BUS}. `receive` then reads what the rule
                                               delivers: each body is the whole EventBridge
                                               event JSON, whose "detail" is our record
    peer_aws.py PORT create-key                with moto's auth on (INITIAL_NO_AUTH_ACTION_COUNT):
                                               an IAM user allowed everything, and its access key;
                                               prints {"access_key_id", "secret_access_key"}
"""
import json
import sys
import time

import boto3

port, command = sys.argv[1], sys.argv[2]
ENDPOINT = f"http://127.0.0.1:{port}"
REGION = "us-east-1"


def client(service):
    # moto's own set-up credentials; with auth on, the first requests run unauthenticated.
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


if command == "create-queue":
    name = sys.argv[3]
    attributes = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
    url = client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    print(json.dumps({"queue_url": url}))
elif command == "receive":
    url, want = sys.argv[3], int(sys.argv[4])
    sqs = client("sqs")
    messages = []
    deadline = time.monotonic() + 30
    extra_until = None
    while time.monotonic() < deadline:
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", [])
        for m in got:
            messages.append(
                {
                    "body": m["Body"],
                    "attributes": {
                        k: v.get("StringValue") for k, v in m.get("MessageAttributes", {}).items()
                    },
                    "group_id": m.get("Attributes", {}).get("MessageGroupId"),
                }
            )
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        if len(messages) >= want and extra_until is None:
            extra_until = time.monotonic() + 2
        if extra_until is not None and time.monotonic() >= extra_until:
            break
    print(json.dumps(messages))
elif command == "create-stream":
    name = sys.argv[3]
    kinesis = client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2})
    print(json.dumps({"stream": name}))
elif command == "read-stream":
    name, want = sys.argv[3], int(sys.argv[4])
    kinesis = client("kinesis")
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    iterators = {
        s["ShardId"]: kinesis.get_shard_iterator(
            StreamName=name, ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for s in shards
    }
    records = []
    deadline = time.monotonic() + 30
    while len(records) < want and time.monotonic() < deadline:
        for shard, iterator in list(iterators.items()):
            got = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            iterators[shard] = got["NextShardIterator"]
            for r in got["Records"]:
                records.append(
                    {"data": r["Data"].decode(), "partition_key": r["PartitionKey"], "shard": shard}
                )
        time.sleep(0.1)
    print(json.dumps(records))
elif command == "create-bus-rule":
    bus, queue_url = sys.argv[3], sys.argv[4]
    events = client("events")
    if bus != "default":
        events.create_event_bus(Name=bus)
    queue_arn = client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    rule = f"pushrail-{bus}"
    events.put_rule(
        Name=rule,
        EventBusName=bus,
        # Every event: any source (a prefix of "" matches all).
        EventPattern=json.dumps({"source": [{"prefix": ""}]}),
        State="ENABLED",
    )
    events.put_targets(
        Rule=rule, EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}]
    )
    print(json.dumps({"bus": bus}))
elif command == "create-key":
    iam = client("iam")
    user = "pushrail-test"
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="all",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    print(json.dumps({"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}))
else:
    sys.exit(f"unknown command {command}")
