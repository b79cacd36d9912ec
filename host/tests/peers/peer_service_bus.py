"""The `azure_service_bus` destination's local peer: a fake of one Azure Service Bus namespace's
REST send API. No emulator runs here (Microsoft's needs Docker and SQL Edge), so this fake checks
what the real service checks, from Microsoft's documents ("Service Bus access control with Shared
Access Signatures", "Send Message Batch", "Send Message"), with the Python standard library only.

    peer_service_bus.py serve PORT CONFIG_JSON
        serves the namespace on 127.0.0.1:PORT. CONFIG_JSON:
        {"namespace": "pushrail-test",
         "policies": {NAME: {"key": KEY, "rights": ["Send", "Listen", "Manage"]}, ...},
         "entities": {PATH: {"duplicate_detection": true|false}, ...},
         "max_message_bytes": 262144}

        - POST /{entity}/messages: Send Message Batch (Content-Type exactly
          application/vnd.microsoft.servicebus.json, no parameters) or, with any other content
          type, Send Message (the body is one message, its properties in the BrokerProperties
          header), as Service Bus tells them apart.

          The Authorization header must be a SAS token
          `SharedAccessSignature sr=…&sig=…&se=…&skn=…` (fields in any order), checked as Service
          Bus does, each refusal a 401 with Service Bus's XML error body
          (`<Error><Code>401</Code><Detail>…</Detail></Error>`):
            * skn names a known policy (else InvalidSignature: Service Bus does not tell an
              unknown policy from a wrong key);
            * sig is the base64 HMAC-SHA256, keyed with the policy key's UTF-8 bytes, of the sr
              value exactly as it stands in the token (URL-encoded), a newline, and se; compared
              in constant time (InvalidSignature);
            * se is an integer number of seconds since the epoch, not in the past
              (ExpiredToken);
            * sr, URL-decoded, names this namespace's resource: with the scheme dropped (Service
              Bus accepts http, https and sb alike) and compared without regard to case (entity
              and host names are case-insensitive), it must equal the requested entity's
              `host[:port]/entity` or be a prefix of it that ends at a `/` boundary (a token for
              the namespace or a parent path covers the entities under it; `orders` does not
              cover `orders2`) (InvalidAudience);
            * the policy has the Send or Manage right ("Unauthorized access. 'Send' claim(s) are
              required to perform this operation.").
          Then: an entity it does not have is 404 ("The messaging entity … could not be
          found."); a request body over max_message_bytes is 413 (MessageSizeExceeded), refused
          whole; a batch body that is not a non-empty JSON array of objects each with a string
          `Body`, optional `BrokerProperties` object (with `MessageId` a string of at most 128
          characters) and optional `UserProperties` object of strings, numbers and booleans is
          400, refused whole. Otherwise every message is stored (with a SequenceNumber), except
          that an entity with duplicate detection on drops a message whose MessageId it already
          has (answering 201 all the same, as Service Bus does), and the answer is 201 with an
          empty body.
        - POST /control/lose?n=N: the next N sends are stored, then answered 500 (an answer lost
          after the write).
        - GET /control/messages?entity=PATH: the stored messages of an entity, in order:
          [{"Body", "BrokerProperties", "UserProperties", "RequestContentType"}] (BrokerProperties with
          the SequenceNumber and EnqueuedTimeUtc the fake added).
        - GET /control/stats: {"sends": [{"entity", "status", "reason", "detail", "messages",
          "message_ids", "skn", "se", "content_type"}], "duplicates_dropped", "lost"}.
"""
import base64
import hashlib
import hmac
import http.server
import json
import sys
import threading
import time
import urllib.parse
import uuid

BATCH_CONTENT_TYPE = "application/vnd.microsoft.servicebus.json"
MAX_MESSAGE_ID_CHARS = 128


class Refusal(Exception):
    def __init__(self, status, reason, detail):
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def parse_token(header):
    """The fields of a SAS token, values as they stand (still URL-encoded)."""
    prefix = "SharedAccessSignature "
    if not header:
        raise Refusal(401, "missing", "MissingToken: The authorization header was not found.")
    if not header.startswith(prefix):
        raise Refusal(401, "malformed", "InvalidToken: The authorization header is not a SharedAccessSignature token.")
    fields = {}
    for pair in header[len(prefix):].strip().split("&"):
        name, sep, value = pair.partition("=")
        if not sep or name in fields:
            raise Refusal(401, "malformed", "InvalidToken: The SharedAccessSignature token is malformed.")
        fields[name] = value
    for name in ("sr", "sig", "se", "skn"):
        if not fields.get(name):
            raise Refusal(401, "malformed", f"InvalidToken: The SharedAccessSignature token is missing {name}.")
    return fields


def without_scheme(uri):
    _, sep, rest = uri.partition("://")
    return (rest if sep else uri).rstrip("/").lower()


def check_token(header, policies, resource):
    """Checks the SAS token of a request for `resource` (host[:port]/entity); the policy name."""
    fields = parse_token(header)
    skn = urllib.parse.unquote_plus(fields["skn"])
    policy = policies.get(skn)
    if policy is None:
        raise Refusal(401, "unknown_policy", "InvalidSignature: The token has an invalid signature.")
    expected = base64.b64encode(
        hmac.new(
            policy["key"].encode("utf-8"),
            (fields["sr"] + "\n" + fields["se"]).encode("utf-8"),
            hashlib.sha256,
        ).digest()
    ).decode()
    given = urllib.parse.unquote_plus(fields["sig"])
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise Refusal(401, "bad_signature", "InvalidSignature: The token has an invalid signature.")
    try:
        expiry = int(fields["se"])
    except ValueError:
        raise Refusal(401, "malformed", "InvalidToken: The token's expiry (se) is not a number.")
    if expiry <= time.time():
        raise Refusal(
            401,
            "expired",
            "ExpiredToken: The token is expired. Expiration time: '{}'".format(
                time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(expiry))
            ),
        )
    audience = without_scheme(urllib.parse.unquote_plus(fields["sr"]))
    target = resource.lower()
    if not (target == audience or target.startswith(audience + "/")):
        raise Refusal(
            401,
            "audience",
            f"InvalidAudience: The token audience '{urllib.parse.unquote_plus(fields['sr'])}' is not valid for the resource '{resource}'.",
        )
    if not ({"Send", "Manage"} & set(policy.get("rights", ["Send"]))):
        raise Refusal(401, "rights", "Unauthorized access. 'Send' claim(s) are required to perform this operation.")
    return skn, expiry


def check_batch(body):
    """The messages of a Send Message Batch body, or a 400 refusal of the whole request."""
    def bad(why):
        return Refusal(400, "bad_request", f"BadRequest: {why}")

    try:
        messages = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad("The request body is not valid JSON.")
    if not isinstance(messages, list) or not messages:
        raise bad("The request body must be a non-empty JSON array of messages.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad(f"Message {i} is not a JSON object.")
        if not isinstance(message.get("Body"), str):
            raise bad(f"Message {i} has no Body string.")
        properties = message.get("BrokerProperties", {})
        if not isinstance(properties, dict):
            raise bad(f"Message {i}: BrokerProperties is not an object.")
        message_id = properties.get("MessageId")
        if message_id is not None and (
            not isinstance(message_id, str) or not message_id or len(message_id) > MAX_MESSAGE_ID_CHARS
        ):
            raise bad(f"Message {i}: MessageId must be a string of 1 to {MAX_MESSAGE_ID_CHARS} characters.")
        user = message.get("UserProperties", {})
        if not isinstance(user, dict) or not all(
            isinstance(v, (str, int, float, bool)) for v in user.values()
        ):
            raise bad(f"Message {i}: UserProperties must be an object of strings, numbers and booleans.")
    return messages


def serve(port, config):
    namespace = config.get("namespace", "pushrail-test")
    policies = config["policies"]
    entities = {path.lower(): dict(settings) for path, settings in config["entities"].items()}
    max_bytes = int(config.get("max_message_bytes", 262144))
    lock = threading.Lock()
    state = {
        "messages": {path: [] for path in entities},
        "seen": {path: set() for path in entities},
        "sequence": 0,
        "sends": [],
        "duplicates_dropped": 0,
        "lose": 0,
        "lost": 0,
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, status, body=b"", content_type=None):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            if content_type or not isinstance(body, bytes):
                self.send_header("Content-Type", content_type or "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, status, detail, entity):
            tracker = f"{namespace}.servicebus.windows.net:{entity}/messages"
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            text = f"{detail} TrackingId:{uuid.uuid4()}_G0, SystemTracker:{tracker}, Timestamp:{stamp}"
            escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            xml = f"<Error><Code>{status}</Code><Detail>{escaped}</Detail></Error>"
            self.answer(status, xml.encode(), "application/xml; charset=utf-8")

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            if url.path == "/control/messages":
                entity = query.get("entity", [""])[0].lower()
                with lock:
                    if entity not in state["messages"]:
                        return self.answer(404, {"error": f"no entity {entity}"})
                    return self.answer(200, state["messages"][entity])
            if url.path == "/control/stats":
                with lock:
                    return self.answer(
                        200,
                        {
                            "sends": state["sends"],
                            "duplicates_dropped": state["duplicates_dropped"],
                            "lost": state["lost"],
                        },
                    )
            self.answer(405, b"")

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/control/lose":
                with lock:
                    state["lose"] = int(urllib.parse.parse_qs(url.query)["n"][0])
                return self.answer(200, {})
            if not url.path.endswith("/messages") or len(url.path) <= len("/messages") + 1:
                return self.error(404, "The requested resource was not found.", url.path)
            self.send_messages(urllib.parse.unquote(url.path[1:-len("/messages")]), body)

        def send_messages(self, entity, body):
            content_type = self.headers.get("Content-Type", "")
            record = {
                "entity": entity,
                "content_type": content_type,
                "messages": 0,
                "message_ids": [],
                "skn": None,
                "se": None,
            }
            try:
                resource = f"{self.headers.get('Host', '')}/{entity}"
                record["skn"], record["se"] = check_token(self.headers.get("Authorization"), policies, resource)
                settings = entities.get(entity.lower())
                if settings is None:
                    raise Refusal(
                        404,
                        "not_found",
                        f"The messaging entity 'sb://{namespace}.servicebus.windows.net/{entity}' could not be found. To know more visit https://aka.ms/sbResourceMgrExceptions.",
                    )
                if len(body) > max_bytes:
                    raise Refusal(
                        413,
                        "too_large",
                        f"MessageSizeExceeded: The received message (size: {len(body)} bytes) exceeds the limit ({max_bytes} bytes) currently allowed on the link.",
                    )
                if content_type == BATCH_CONTENT_TYPE:
                    messages = check_batch(body)
                else:
                    # Send Message: the whole body is one message.
                    try:
                        properties = json.loads(self.headers.get("BrokerProperties") or "{}")
                    except ValueError:
                        raise Refusal(400, "bad_request", "BadRequest: The BrokerProperties header is not JSON.")
                    messages = [
                        {
                            "Body": body.decode("utf-8", "replace"),
                            "BrokerProperties": properties,
                            "UserProperties": {},
                        }
                    ]
            except Refusal as refusal:
                record.update(status=refusal.status, reason=refusal.reason, detail=refusal.detail)
                with lock:
                    state["sends"].append(record)
                return self.error(refusal.status, refusal.detail, entity)

            key = entity.lower()
            with lock:
                for message in messages:
                    properties = dict(message.get("BrokerProperties") or {})
                    message_id = properties.get("MessageId")
                    record["message_ids"].append(message_id)
                    if settings.get("duplicate_detection") and message_id is not None:
                        if message_id in state["seen"][key]:
                            state["duplicates_dropped"] += 1
                            continue
                        state["seen"][key].add(message_id)
                    state["sequence"] += 1
                    properties["SequenceNumber"] = state["sequence"]
                    properties["EnqueuedTimeUtc"] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
                    state["messages"][key].append(
                        {
                            "Body": message["Body"],
                            "BrokerProperties": properties,
                            "UserProperties": message.get("UserProperties") or {},
                            "RequestContentType": content_type,
                        }
                    )
                record["messages"] = len(messages)
                lose = state["lose"] > 0
                if lose:
                    state["lose"] -= 1
                    state["lost"] += 1
                record["status"] = 500 if lose else 201
                record["reason"] = "lost" if lose else None
                record["detail"] = None
                state["sends"].append(record)
            if lose:
                return self.error(
                    500,
                    "InternalServerError: The server was unable to process the request; please retry the operation.",
                    entity,
                )
            self.answer(201, b"")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.serve_forever()


command = sys.argv[1]
if command == "serve":
    serve(int(sys.argv[2]), json.loads(sys.argv[3]))
else:
    sys.exit(f"unknown command {command}")
