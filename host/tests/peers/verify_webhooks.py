"""Verifies webhook requests with the `standardwebhooks` package (PyPI), not with our own code.

Reads {"secret": ..., "requests": [{"headers": {...}, "body": "..."}]} on stdin, verifies every
request, prints how many verified, and exits 1 on the first that does not.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook

data = json.load(sys.stdin)
hook = Webhook(data["secret"])
for i, request in enumerate(data["requests"]):
    try:
        hook.verify(request["body"], request["headers"])
    except Exception as error:  # noqa: BLE001 - report any refusal with its request
        print(f"request {i} refused: {error!r}", file=sys.stderr)
        sys.exit(1)
print(len(data["requests"]))
