"""The `gcs` destination's local peer: gcp-storage-emulator (PyPI) holds the objects; this script
sets it up, reads back from it over its JSON API (plain HTTP, not our own code), and runs the
token endpoint that Google's OAuth 2.0 JWT-bearer flow needs, which no emulator provides.

    peer_gcp.py new-key TOKEN_URI OUT_DIR NAME
        generates a fresh RSA 2048 key pair (PyPI `cryptography`), writes the public half to
        OUT_DIR/NAME.pub.pem and prints the service account key file as Google shapes it
        {"type": "service_account", "project_id", "private_key_id", "private_key" (PEM,
        PKCS#8), "client_email", "token_uri": TOKEN_URI, ...}

    peer_gcp.py serve PORT UPSTREAM PUBLIC_KEY_FILE CLIENT_EMAIL PRIVATE_KEY_ID SCOPE
        UPSTREAM is the port of an emulator (gcp-storage-emulator, the Pub/Sub emulator), or
        `bigquery`: no BigQuery emulator exists, so this script then serves a fake of
        `tabledata.insertAll` itself (below). Serves on 127.0.0.1:PORT:
        - POST /token: Google's token endpoint for one service account. It checks what Google
          checks: the form's grant_type is urn:ietf:params:oauth:grant-type:jwt-bearer, the
          assertion is a JWT whose RS256 signature verifies with PUBLIC_KEY_FILE (and whose kid is
          PRIVATE_KEY_ID), iss is CLIENT_EMAIL, aud is this endpoint's URL, scope is SCOPE, iat is
          now (within 5 minutes) and exp - iat is at most an hour. It answers {"access_token",
          "expires_in", "token_type": "Bearer"}, or Google's refusals: 400 {"error":
          "invalid_grant", "error_description": "Invalid JWT Signature."} (and the other
          invalid_grant / invalid_scope / unsupported_grant_type answers).
        - every other path: the API, passed on to the emulator on UPSTREAM once the request
          carries a token issued here and not revoked (else 401 authError, as Google answers),
          and for Cloud Storage with the precondition `ifGenerationMatch=0` of an upload enforced
          (412 conditionNotMet when the object exists), which the emulator ignores.
        - with UPSTREAM `bigquery`, POST /bigquery/v2/projects/P/datasets/D/tables/T/insertAll
          (behind the same token check) is answered here, checking what BigQuery checks: a JSON
          body with a non-empty `rows` list of {"insertId", "json"}; the table exists (else 404
          notFound "Not found: Table P:D.T"); each row against the table's schema (an unknown
          field unless ignoreUnknownValues, a missing REQUIRED field, STRING (with its
          maxLength), TIMESTAMP (RFC 3339) and JSON (a string holding JSON, or an object)
          values), refused rows in `insertErrors` with reason `invalid`, and, unless
          skipInvalidRows, every other row `stopped` and nothing inserted. A row whose insertId
          the table has seen is not stored again (BigQuery's best-effort de-duplication).
        - POST /control/revoke: revokes every token issued so far (the API then answers 401);
          POST /control/lose?n=N: the next N writes (uploads, publishes, insertAlls) are stored,
          then answered 503 backendError (an answer lost after the write); POST
          /control/fail?n=N: the next N writes are answered 503 (UNAVAILABLE) without being
          passed on; GET /control/stats: {"tokens_issued", "refused": [{"error",
          "error_description"}], "api": [{"method", "path", "status", "token"}]}.
        - BigQuery fake only: POST /control/tables {"project", "dataset", "table", "schema":
          [{"name", "type", "mode", "maxLength"}]} creates a table; GET
          /control/rows?table=P:D.T answers {"rows": [{"insertId", "json"}]} in insertion order.

    peer_gcp.py create-bucket EMULATOR_PORT NAME
        creates bucket NAME in the emulator; prints {"bucket": NAME}

    peer_gcp.py pubsub-setup EMULATOR_PORT PROJECT TOPIC SUBSCRIPTION
        creates the topic and a pull subscription to it (message ordering on) in the Pub/Sub
        emulator; prints {"topic", "subscription"}

    peer_gcp.py pubsub-pull EMULATOR_PORT PROJECT SUBSCRIPTION N
        pulls (and acknowledges) until N messages arrived or 30 s passed, then once more after a
        second to catch any extra; prints [{"message_id", "record" (data, parsed JSON),
        "attributes", "ordering_key"}] in the order pulled

    peer_gcp.py read-objects EMULATOR_PORT BUCKET PREFIX
        every object under PREFIX, downloaded (alt=media), gunzipped when its name ends in .gz
        (which must then be gzip), its NDJSON lines parsed; prints [{"name", "records",
        "content_type", "size"}] in name order
"""
import base64
import datetime
import gzip
import http.server
import json
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def emulator(port):
    return f"http://127.0.0.1:{port}"


def new_key(token_uri, out_dir, name):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = os.path.join(out_dir, f"{name}.pub.pem")
    with open(path, "wb") as f:
        f.write(public_pem)
    email = "pushrail-test@pushrail-test.iam.gserviceaccount.com"
    print(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "pushrail-test",
                "private_key_id": secrets.token_hex(20),
                "private_key": private_pem,
                "client_email": email,
                "client_id": "100000000000000000001",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": token_uri,
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
                + urllib.parse.quote(email),
                "universe_domain": "googleapis.com",
            }
        )
    )


class Refusal(Exception):
    def __init__(self, error, description):
        super().__init__(description)
        self.error = error
        self.description = description


def google_error(code, reason, message):
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }
    }


def bigquery_error(code, reason, message, status):
    error = google_error(code, reason, message)
    error["error"]["status"] = status
    return error


def check_value(field, value):
    """Why BigQuery refuses `value` for schema `field`, or None."""
    name, kind = field["name"], field["type"].upper()
    if value is None:
        return f"Missing required field: {name}." if field.get("mode") == "REQUIRED" else None
    if kind == "STRING":
        if not isinstance(value, str):
            return f"Cannot convert value to string. Field: {name}; Value: {json.dumps(value)[:40]}"
        limit = field.get("maxLength")
        if limit is not None and len(value) > int(limit):
            return f"Field {name}: STRING({limit}) has a value of length {len(value)}, over its maximum length {limit}."
    elif kind == "TIMESTAMP":
        try:
            datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return f"Could not parse '{value}' as a timestamp. Required format is YYYY-MM-DD HH:MM[:SS[.SSSSSS]] or YYYY/MM/DD HH:MM[:SS[.SSSSSS]]"
    elif kind == "JSON":
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError:
                return f"Invalid JSON in field {name}"
        elif not isinstance(value, (dict, list)):
            return f"Invalid JSON in field {name}"
    return None


def insert_all(tables, path, body, content_type):
    """BigQuery's tabledata.insertAll against the in-memory tables: (status, answer)."""
    parts = [urllib.parse.unquote(p) for p in path.split("/")]
    # ['', 'bigquery', 'v2', 'projects', P, 'datasets', D, 'tables', T, 'insertAll']
    if len(parts) != 10 or parts[1:4] != ["bigquery", "v2", "projects"] or parts[5] != "datasets" or parts[7] != "tables" or parts[9] != "insertAll":
        return 404, bigquery_error(404, "notFound", "Not found: URL " + path, "NOT_FOUND")
    table_name = f"{parts[4]}:{parts[6]}.{parts[8]}"
    if not (content_type or "").startswith("application/json"):
        return 400, bigquery_error(400, "invalid", "Invalid Content-Type: " + str(content_type), "INVALID_ARGUMENT")
    try:
        request = json.loads(body)
        assert isinstance(request, dict)
    except (ValueError, AssertionError):
        return 400, bigquery_error(400, "parseError", "Invalid JSON payload received.", "INVALID_ARGUMENT")
    table = tables.get(table_name)
    if table is None:
        return 404, bigquery_error(404, "notFound", f"Not found: Table {table_name}", "NOT_FOUND")
    rows = request.get("rows")
    if not isinstance(rows, list) or not rows:
        return 400, bigquery_error(400, "invalid", "No rows present in the request.", "INVALID_ARGUMENT")
    fields = {f["name"]: f for f in table["schema"]}
    errors = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("json"), dict):
            return 400, bigquery_error(400, "invalid", f"Invalid row {index}: no json object.", "INVALID_ARGUMENT")
        if "insertId" in row and not isinstance(row["insertId"], str):
            return 400, bigquery_error(400, "invalid", f"Invalid row {index}: insertId must be a string.", "INVALID_ARGUMENT")
        problems = []
        for name in row["json"]:
            if name not in fields and not request.get("ignoreUnknownValues"):
                problems.append({"reason": "invalid", "location": name, "debugInfo": "", "message": f"no such field: {name}."})
        for name, field in fields.items():
            message = check_value(field, row["json"].get(name))
            if message:
                problems.append({"reason": "invalid", "location": name, "debugInfo": "", "message": message})
        if problems:
            errors[index] = problems
    if errors and not request.get("skipInvalidRows"):
        answer = [
            {"index": i, "errors": errors.get(i) or [{"reason": "stopped", "location": "", "debugInfo": "", "message": ""}]}
            for i in range(len(rows))
        ]
        return 200, {"kind": "bigquery#tableDataInsertAllResponse", "insertErrors": answer}
    for index, row in enumerate(rows):
        if index in errors:
            continue
        insert_id = row.get("insertId")
        if insert_id is not None and insert_id in table["insert_ids"]:
            continue
        if insert_id is not None:
            table["insert_ids"].add(insert_id)
        table["rows"].append({"insertId": insert_id, "json": row["json"]})
    answer = {"kind": "bigquery#tableDataInsertAllResponse"}
    if errors:
        answer["insertErrors"] = [{"index": i, "errors": e} for i, e in sorted(errors.items())]
    return 200, answer


def is_write(method, path):
    return method == "POST" and (path.startswith("/upload/") or path.endswith(":publish") or path.endswith("/insertAll"))


def serve(port, upstream, public_key_file, client_email, key_id, scope):
    with open(public_key_file, "rb") as f:
        public_key = serialization.load_pem_public_key(f.read())
    token_url = f"http://127.0.0.1:{port}/token"
    lock = threading.Lock()
    state = {"tokens": set(), "issued": 0, "refused": [], "api": [], "lose": 0, "fail": 0, "tables": {}}

    def check_assertion(form):
        if form.get("grant_type") != JWT_BEARER:
            raise Refusal("unsupported_grant_type", "Invalid grant_type: " + form.get("grant_type", ""))
        parts = form.get("assertion", "").split(".")
        if len(parts) != 3:
            raise Refusal("invalid_grant", "Invalid JWT: malformed.")
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        if header.get("alg") != "RS256":
            raise Refusal("invalid_grant", "Invalid JWT: alg must be RS256.")
        try:
            public_key.verify(
                b64url_decode(parts[2]),
                f"{parts[0]}.{parts[1]}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            raise Refusal("invalid_grant", "Invalid JWT Signature.")
        if header.get("kid") != key_id:
            raise Refusal("invalid_grant", "Invalid JWT Signature.")
        if claims.get("iss") != client_email:
            raise Refusal("invalid_grant", "Invalid email or User ID")
        if claims.get("aud") != token_url:
            raise Refusal("invalid_grant", "Invalid JWT: Failed audience check.")
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if (
            not isinstance(iat, int)
            or not isinstance(exp, int)
            or abs(iat - now) > 300
            or exp <= now
            or exp - iat > 3600
        ):
            raise Refusal(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
            )
        if claims.get("scope") != scope:
            raise Refusal("invalid_scope", f"Invalid OAuth scope or ID token audience provided: {claims.get('scope')}")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, status, body, headers=()):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            if not isinstance(body, bytes):
                self.send_header("Content-Type", "application/json; charset=UTF-8")
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self):
            if self.path == "/control/stats":
                with lock:
                    return self.answer(
                        200,
                        {"tokens_issued": state["issued"], "refused": state["refused"], "api": state["api"]},
                    )
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/control/rows":
                name = urllib.parse.parse_qs(url.query)["table"][0]
                with lock:
                    table = state["tables"].get(name)
                    rows = list(table["rows"]) if table else None
                return self.answer(200 if table else 404, {"rows": rows})
            self.api("GET", b"")

        def do_POST(self):
            body = self.body()
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/token":
                return self.token(body)
            if url.path == "/control/revoke":
                with lock:
                    state["tokens"].clear()
                return self.answer(200, {})
            if url.path in ("/control/lose", "/control/fail"):
                with lock:
                    state[url.path.rsplit("/", 1)[1]] = int(urllib.parse.parse_qs(url.query)["n"][0])
                return self.answer(200, {})
            if url.path == "/control/tables":
                table = json.loads(body)
                name = f"{table['project']}:{table['dataset']}.{table['table']}"
                with lock:
                    state["tables"][name] = {"schema": table["schema"], "rows": [], "insert_ids": set()}
                return self.answer(200, {"table": name})
            self.api("POST", body)

        def token(self, body):
            form = dict(urllib.parse.parse_qsl(body.decode()))
            try:
                check_assertion(form)
            except Refusal as refusal:
                with lock:
                    state["refused"].append({"error": refusal.error, "error_description": refusal.description})
                status = 400
                return self.answer(status, {"error": refusal.error, "error_description": refusal.description})
            token = "ya29.fake-" + secrets.token_urlsafe(24)
            with lock:
                state["tokens"].add(token)
                state["issued"] += 1
            self.answer(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

        def api(self, method, body):
            url = urllib.parse.urlsplit(self.path)
            authorization = self.headers.get("Authorization", "")
            token = authorization[len("Bearer "):] if authorization.startswith("Bearer ") else None
            record = {"method": method, "path": self.path, "token": token}
            with lock:
                valid = token in state["tokens"]
            if not valid:
                record["status"] = 401
                with lock:
                    state["api"].append(record)
                return self.answer(
                    401,
                    google_error(401, "authError", "Invalid Credentials"),
                    [("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/"')],
                )
            query = urllib.parse.parse_qs(url.query)
            if method == "POST" and url.path.startswith("/upload/") and query.get("ifGenerationMatch") == ["0"]:
                bucket = url.path.split("/")[5]
                name = query["name"][0]
                try:
                    urllib.request.urlopen(
                        f"{emulator(upstream)}/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}"
                    )
                    exists = True
                except urllib.error.HTTPError:
                    exists = False
                if exists:
                    record["status"] = 412
                    with lock:
                        state["api"].append(record)
                    return self.answer(
                        412,
                        google_error(412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold."),
                    )
            write = is_write(method, url.path)
            with lock:
                fail = write and state["fail"] > 0
                if fail:
                    state["fail"] -= 1
            if fail:
                record["status"] = 503
                with lock:
                    state["api"].append(record)
                return self.answer(503, bigquery_error(503, "backendError", "The service is currently unavailable.", "UNAVAILABLE"))
            if upstream == "bigquery":
                with lock:
                    status, answer = insert_all(state["tables"], url.path, body, self.headers.get("Content-Type"))
                data, content_type = json.dumps(answer).encode(), "application/json; charset=UTF-8"
            else:
                request = urllib.request.Request(
                    emulator(upstream) + self.path,
                    data=body if method == "POST" else None,
                    method=method,
                    headers={"Content-Type": self.headers.get("Content-Type", "application/octet-stream")},
                )
                try:
                    with urllib.request.urlopen(request) as response:
                        status, data, content_type = response.status, response.read(), response.headers.get("Content-Type")
                except urllib.error.HTTPError as error:
                    status, data, content_type = error.code, error.read(), error.headers.get("Content-Type")
            with lock:
                lose = write and status == 200 and state["lose"] > 0
                if lose:
                    state["lose"] -= 1
            if lose:
                record["status"] = 503
                with lock:
                    state["api"].append(record)
                return self.answer(503, google_error(503, "backendError", "Backend Error"))
            record["status"] = status
            with lock:
                state["api"].append(record)
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.serve_forever()


def create_bucket(port, name):
    request = urllib.request.Request(
        f"{emulator(port)}/storage/v1/b?project=pushrail-test",
        data=json.dumps({"name": name}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request).read()
    print(json.dumps({"bucket": name}))


def pubsub_call(port, method, path, body=None):
    request = urllib.request.Request(
        f"{emulator(port)}/v1/{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"{}")


def pubsub_setup(port, project, topic, subscription):
    pubsub_call(port, "PUT", f"projects/{project}/topics/{topic}", {})
    pubsub_call(
        port,
        "PUT",
        f"projects/{project}/subscriptions/{subscription}",
        {"topic": f"projects/{project}/topics/{topic}", "ackDeadlineSeconds": 60, "enableMessageOrdering": True},
    )
    print(json.dumps({"topic": topic, "subscription": subscription}))


def pubsub_pull(port, project, subscription, n):
    messages = []

    def pull():
        answer = pubsub_call(
            port,
            "POST",
            f"projects/{project}/subscriptions/{subscription}:pull",
            {"maxMessages": 1000, "returnImmediately": True},
        )
        received = answer.get("receivedMessages", [])
        for item in received:
            message = item["message"]
            messages.append(
                {
                    "message_id": message["messageId"],
                    "record": json.loads(base64.b64decode(message.get("data", ""))),
                    "attributes": message.get("attributes", {}),
                    "ordering_key": message.get("orderingKey"),
                }
            )
        if received:
            pubsub_call(
                port,
                "POST",
                f"projects/{project}/subscriptions/{subscription}:acknowledge",
                {"ackIds": [item["ackId"] for item in received]},
            )

    deadline = time.time() + 30
    while len(messages) < n and time.time() < deadline:
        pull()
        if len(messages) < n:
            time.sleep(0.2)
    time.sleep(1)
    pull()
    print(json.dumps(messages))


def read_objects(port, bucket, prefix):
    listing = json.load(
        urllib.request.urlopen(
            f"{emulator(port)}/storage/v1/b/{bucket}/o?prefix={urllib.parse.quote(prefix, safe='')}"
        )
    )
    objects = []
    for item in sorted(listing.get("items", []), key=lambda i: i["name"]):
        name = item["name"]
        data = urllib.request.urlopen(
            f"{emulator(port)}/download/storage/v1/b/{bucket}/o/{urllib.parse.quote(name, safe='')}?alt=media"
        ).read()
        if name.endswith(".gz"):
            assert data[:2] == b"\x1f\x8b", f"{name} is not gzip"
            data = gzip.decompress(data)
        text = data.decode("utf-8")
        assert text == "" or text.endswith("\n"), f"{name}: the last line has no newline"
        objects.append(
            {
                "name": name,
                "records": [json.loads(line) for line in text.splitlines()],
                "content_type": item.get("contentType"),
                "size": int(item.get("size") or 0),
            }
        )
    print(json.dumps(objects))


command = sys.argv[1]
if command == "new-key":
    new_key(*sys.argv[2:5])
elif command == "serve":
    port, upstream, public_key_file, client_email, key_id, scope = sys.argv[2:8]
    serve(int(port), upstream if upstream == "bigquery" else int(upstream), public_key_file, client_email, key_id, scope)
elif command == "pubsub-setup":
    pubsub_setup(*sys.argv[2:6])
elif command == "pubsub-pull":
    pubsub_pull(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
elif command == "create-bucket":
    create_bucket(sys.argv[2], sys.argv[3])
elif command == "read-objects":
    read_objects(sys.argv[2], sys.argv[3], sys.argv[4])
else:
    sys.exit(f"unknown command {command}")
