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
    peer_aws.py PORT create-role NAME EXTERNAL_ID
                                               an IAM role that trusts moto's account (and the
                                               create-key user) with sts:ExternalId =
                                               EXTERNAL_ID, which moto enforces, and may do
                                               everything; prints {"role_arn"}
    peer_aws.py PORT assumed-roles             every AssumeRole moto answered (from moto's own
                                               /moto-api/data.json); prints [{"role_arn",
                                               "external_id", "session_name", "access_key_id"}]
    peer_aws.py PORT create-topic NAME         creates SNS topic NAME (FIFO when it ends in .fifo);
                                               prints {"topic_arn"}
    peer_aws.py PORT subscribe-queue TOPIC_ARN QUEUE_URL
                                               subscribes the SQS queue to the topic with raw
                                               message delivery, so each SQS body is the published
                                               message and its message attributes arrive as SQS
                                               message attributes; prints {"subscription_arn"}
    peer_aws.py PORT create-bucket NAME        creates S3 bucket NAME; prints {"bucket": NAME}
    peer_aws.py PORT read-objects BUCKET PREFIX [ACCESS_KEY_ID SECRET_ACCESS_KEY]
                                               every object under PREFIX, downloaded (with the
                                               key given, for moto's auth) with ChecksumMode
                                               ENABLED, gunzipped when its key ends in .gz (which
                                               must then be gzip), its NDJSON lines parsed; prints
                                               [{"key", "records", "content_type",
                                               "content_encoding", "metadata", "checksum_sha256"
                                               (as S3 keeps it), "stored_sha256" (of the stored
                                               bytes, base64)}] in key order
    peer_aws.py PORT create-firehose NAME BUCKET
                                               creates a Direct PUT Firehose stream NAME whose
                                               destination is S3 bucket BUCKET (made first with
                                               create-bucket); moto writes each PutRecordBatch
                                               at once as one object of the records' data
                                               concatenated, which read-objects BUCKET "" reads
                                               back; prints {"delivery_stream_arn"}
"""
import json
import os
import sys
import time

import boto3

port, command = sys.argv[1], sys.argv[2]
ENDPOINT = f"http://127.0.0.1:{port}"
REGION = "us-east-1"


def client(service):
    # moto's own set-up credentials; with auth on, the first requests run unauthenticated, and
    # later ones (reading back) sign with the key in PEER_AWS_ACCESS_KEY_ID/SECRET_ACCESS_KEY.
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=os.environ.get("PEER_AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("PEER_AWS_SECRET_ACCESS_KEY", "testing"),
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
elif command == "create-role":
    name, external_id = sys.argv[3], sys.argv[4]
    iam = client("iam")
    # moto checks trust policies (principal and conditions, sts:ExternalId among them) but
    # matches the principal literally, so the user of `create-key` is named beside the account.
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {
                    "AWS": [
                        "arn:aws:iam::123456789012:root",
                        "arn:aws:iam::123456789012:user/pushrail-test",
                    ]
                },
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name,
        PolicyName="all",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    print(json.dumps({"role_arn": arn}))
elif command == "assumed-roles":
    import urllib.request

    with urllib.request.urlopen(f"{ENDPOINT}/moto-api/data.json") as answer:
        data = json.load(answer)
    roles = data.get("sts", {}).get("AssumedRole", [])
    print(
        json.dumps(
            [
                {k: r.get(k) for k in ("role_arn", "external_id", "session_name", "access_key_id")}
                for r in roles
            ]
        )
    )
elif command == "create-topic":
    name = sys.argv[3]
    attributes = {"FifoTopic": "true"} if name.endswith(".fifo") else {}
    arn = client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
    print(json.dumps({"topic_arn": arn}))
elif command == "subscribe-queue":
    topic_arn, queue_url = sys.argv[3], sys.argv[4]
    queue_arn = client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    subscription = client("sns").subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    print(json.dumps({"subscription_arn": subscription}))
elif command == "create-bucket":
    name = sys.argv[3]
    client("s3").create_bucket(Bucket=name)
    print(json.dumps({"bucket": name}))
elif command == "read-objects":
    import base64
    import gzip
    import hashlib

    bucket, prefix = sys.argv[3], sys.argv[4]
    if len(sys.argv) > 6:
        s3 = boto3.client(
            "s3",
            endpoint_url=ENDPOINT,
            region_name=REGION,
            aws_access_key_id=sys.argv[5],
            aws_secret_access_key=sys.argv[6],
        )
    else:
        s3 = client("s3")
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            got = s3.get_object(Bucket=bucket, Key=item["Key"], ChecksumMode="ENABLED")
            stored = got["Body"].read()
            data = stored
            if item["Key"].endswith(".gz"):
                assert stored[:2] == b"\x1f\x8b", f"{item['Key']} is not gzip"
                data = gzip.decompress(stored)
            text = data.decode("utf-8")
            assert text == "" or text.endswith("\n"), f"{item['Key']}: the last line has no newline"
            objects.append(
                {
                    "key": item["Key"],
                    "records": [json.loads(line) for line in text.splitlines()],
                    "content_type": got.get("ContentType"),
                    "content_encoding": got.get("ContentEncoding"),
                    "metadata": got.get("Metadata", {}),
                    "checksum_sha256": got.get("ChecksumSHA256"),
                    "stored_sha256": base64.b64encode(hashlib.sha256(stored).digest()).decode(),
                }
            )
    objects.sort(key=lambda o: o["key"])
    print(json.dumps(objects))
elif command == "create-firehose":
    name, bucket = sys.argv[3], sys.argv[4]
    arn = client("firehose").create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/pushrail-firehose",
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "",
        },
    )["DeliveryStreamARN"]
    print(json.dumps({"delivery_stream_arn": arn}))
else:
    sys.exit(f"unknown command {command}")
