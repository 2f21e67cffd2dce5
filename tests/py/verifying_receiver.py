"""A webhook receiver for tests/api/webhooks.rs: verifies every delivery with
the reference Standard Webhooks library, as a receiver would, and reports each
result as one JSON line on stdout (the first line is the port it listens on).

POST /rotating: verified separately with WEBHOOK_SECRET_NEW and with
WEBHOOK_SECRET_OLD (mid-rotation, either secret alone must verify).
POST /custodian: not verified here; the headers and body are reported for the
test to check the opt-in `Custodian-Signature` scheme.
"""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

# Requests are handled on threads: one line at a time on stdout.
PRINT = threading.Lock()
NEW = Webhook(os.environ["WEBHOOK_SECRET_NEW"])
OLD = Webhook(os.environ["WEBHOOK_SECRET_OLD"])


def verifies(hook, body, headers):
    try:
        hook.verify(body, headers)
        return True
    except WebhookVerificationError:
        return False


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k: v for k, v in self.headers.items()}
        event = json.loads(body)
        report = {"path": self.path, "id": event.get("id"), "seq": event.get("seq")}
        if self.path == "/rotating":
            report["new"] = verifies(NEW, body, headers)
            report["old"] = verifies(OLD, body, headers)
            # A tampered body must not verify (the library really checks).
            report["tampered"] = verifies(NEW, body + b" ", headers)
            report["webhookId"] = headers.get("webhook-id")
        else:
            report["headers"] = {k.lower(): v for k, v in headers.items()}
            report["body"] = body.decode()
        with PRINT:
            print(json.dumps(report), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
