#!/usr/bin/env python3
"""A minimal Custodian webhook receiver for a content platform (see README.md).

It keeps the platform's own ownership table in SQLite and applies every
`user.disposed` receipt to it, line by line, exactly once; a replayed event or
a second pass over the feed changes nothing. It resynchronises from the events
feed when it starts, so events that happened while it was down are applied
before it accepts webhooks again.

    python3 receiver.py serve           # resync, then receive webhooks
    python3 receiver.py resync [--from SEQ]   # catch up from the feed and exit
    python3 receiver.py own '[{"kind": "recording", "id": "r1", "owner": "<user id>"}]'

Configuration (environment):
    CUSTODIAN_URL       Custodian's base URL, e.g. https://custodian.example.edu
    CUSTODIAN_TOKEN     a bearer token that may read receipts and the events feed
                        and write the content ledger
    WEBHOOK_SECRET      the endpoint's Standard Webhooks secret (whsec_...)
    PLATFORM_DB         the platform's SQLite file (default platform.db)
    LISTEN              host:port to listen on (default 127.0.0.1:8090)
    PAGE_SIZE           receipt lines and feed events per request (default 100)

Standard library only, plus the `standardwebhooks` package (pip install standardwebhooks).
"""

import json
import os
import sqlite3
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

CUSTODIAN_URL = os.environ.get("CUSTODIAN_URL", "http://127.0.0.1:8080").rstrip("/")
TOKEN = os.environ.get("CUSTODIAN_TOKEN", "")
DB_PATH = os.environ.get("PLATFORM_DB", "platform.db")
PAGE_SIZE = int(os.environ.get("PAGE_SIZE", "100"))
HTTP_TIMEOUT = 10  # seconds per request to Custodian
# Where Custodian files archived personal folders (its ledger's Archive folder).
ARCHIVE = ("folder", "custodian-archive")

SCHEMA = """
CREATE TABLE IF NOT EXISTS ownership (
    kind TEXT NOT NULL, id TEXT NOT NULL,
    owner TEXT,                      -- Custodian's user id; NULL: orphaned
    parent_kind TEXT, parent_id TEXT,
    personal_root INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS people (
    user_id TEXT PRIMARY KEY, state TEXT NOT NULL);   -- active | suspended | disposed
CREATE TABLE IF NOT EXISTS applied_disposals (
    disposal_id TEXT PRIMARY KEY, event_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS feed_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS stats (
    name TEXT PRIMARY KEY, n INTEGER NOT NULL);
"""

# One event at a time: webhooks and resync apply in seq order.
LOCK = threading.Lock()


def db():
    c = sqlite3.connect(DB_PATH, timeout=30, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.executescript(SCHEMA)
    return c


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def custodian(method, path, body=None):
    """One request to Custodian's admin API; the parsed JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(CUSTODIAN_URL + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


def cursor(c):
    row = c.execute("SELECT seq FROM feed_cursor WHERE id = 1").fetchone()
    return row[0] if row else 0


def bump(c, name):
    c.execute(
        "INSERT INTO stats (name, n) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET n = n + 1",
        (name,),
    )


def receipt_lines(receipt_path):
    """Every line of a receipt, page by page (`startIndex`, `count`)."""
    start = 1
    while True:
        page = custodian("GET", f"{receipt_path}?startIndex={start}&count={PAGE_SIZE}")
        items = page.get("items", [])
        yield from items
        start += len(items)
        if not items or start > page.get("totalItems", 0):
            return


def apply_line(c, line):
    """One receipt line on the ownership table. Each is idempotent on its own."""
    key = (line["kind"], line["id"])
    action = line["action"]
    if action == "transfer":
        c.execute("UPDATE ownership SET owner = ? WHERE kind = ? AND id = ?", (line["toOwner"], *key))
    elif action == "orphan":
        c.execute("UPDATE ownership SET owner = NULL WHERE kind = ? AND id = ?", key)
    elif action == "delete":
        c.execute("DELETE FROM ownership WHERE kind = ? AND id = ?", key)
    elif action == "archive":
        # The personal folder moves under the Archive folder, to its new owner.
        c.execute(
            "UPDATE ownership SET owner = ?, parent_kind = ?, parent_id = ?, personal_root = 0"
            " WHERE kind = ? AND id = ?",
            (line.get("toOwner"), *ARCHIVE, *key),
        )
    # keep: the item stays where it is; anything newer is left for a newer receiver.


def apply_event(c, event):
    """Applies one event in one transaction; False if it was already applied."""
    seq = event["seq"]
    if seq <= cursor(c):
        bump(c, "duplicates")
        return False
    kind = event["type"]
    user = (event.get("subject") or {}).get("userId")
    lines = []
    if kind == "user.disposed":
        disposal = event["data"]["disposalId"]
        done = c.execute(
            "SELECT 1 FROM applied_disposals WHERE disposal_id = ?", (disposal,)
        ).fetchone()
        # Read the whole receipt before the transaction: no lock held over the network.
        if not done:
            lines = list(receipt_lines(event["data"]["receipt"]))
    c.execute("BEGIN IMMEDIATE")
    try:
        if kind == "user.disposed":
            disposal = event["data"]["disposalId"]
            fresh = c.execute(
                "INSERT INTO applied_disposals (disposal_id, event_seq) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING",
                (disposal, seq),
            ).rowcount
            if fresh:
                for line in lines:
                    apply_line(c, line)
            else:
                bump(c, "duplicates")
        state = {
            "user.suspended": "suspended",
            "user.reactivated": "active",
            "user.restored": "active",
            "user.disposed": "disposed",
        }.get(kind)
        if state and user:
            c.execute(
                "INSERT INTO people (user_id, state) VALUES (?, ?)"
                " ON CONFLICT (user_id) DO UPDATE SET state = excluded.state",
                (user, state),
            )
        c.execute(
            "INSERT INTO feed_cursor (id, seq) VALUES (1, ?)"
            " ON CONFLICT (id) DO UPDATE SET seq = MAX(seq, excluded.seq)",
            (seq,),
        )
        bump(c, "applied")
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    return True


def resync(c, start=None):
    """Applies every event after the cursor (or after `start`) from the feed."""
    after = cursor(c) if start is None else start
    while True:
        page = custodian("GET", f"/admin/v1/events?after={after}&count={PAGE_SIZE}")
        events = page.get("events", [])
        if not events:
            return
        for e in events:
            if start is not None and e["seq"] <= cursor(c):
                # An explicit replay: the disposal guard, not the cursor, decides.
                replay(c, e)
            else:
                apply_event(c, e)
        after = events[-1]["seq"]


def replay(c, event):
    """Re-applies an old event's receipt lines unless its disposal was applied."""
    if event["type"] != "user.disposed":
        return
    disposal = event["data"]["disposalId"]
    if c.execute("SELECT 1 FROM applied_disposals WHERE disposal_id = ?", (disposal,)).fetchone():
        c.execute("BEGIN IMMEDIATE")
        bump(c, "duplicates")
        c.execute("COMMIT")
        return
    lines = list(receipt_lines(event["data"]["receipt"]))
    c.execute("BEGIN IMMEDIATE")
    c.execute(
        "INSERT INTO applied_disposals (disposal_id, event_seq) VALUES (?, ?)",
        (disposal, event["seq"]),
    )
    for line in lines:
        apply_line(c, line)
    c.execute("COMMIT")


def state(c):
    """What the platform holds (GET /state): its table, people, cursor and counters."""
    return {
        "cursor": cursor(c),
        "ownership": [
            {"kind": k, "id": i, "owner": o, "parent": {"kind": pk, "id": pi} if pk else None,
             "personalRoot": bool(pr)}
            for (k, i, o, pk, pi, pr) in c.execute(
                "SELECT kind, id, owner, parent_kind, parent_id, personal_root"
                " FROM ownership ORDER BY kind, id")
        ],
        "people": dict(c.execute("SELECT user_id, state FROM people ORDER BY user_id").fetchall()),
        "stats": dict(c.execute("SELECT name, n FROM stats").fetchall()),
    }


class Handler(BaseHTTPRequestHandler):
    hook = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            event = self.hook.verify(body, dict(self.headers.items()))
        except WebhookVerificationError:
            # Fail closed: an unverified request changes nothing.
            self.send_response(401)
            self.end_headers()
            return
        with LOCK:
            c = db()
            try:
                if event["seq"] > cursor(c) + 1:
                    resync(c)  # a gap: take the missing events from the feed first
                apply_event(c, event)
            except (urllib.error.URLError, OSError, KeyError, ValueError) as e:
                # Custodian retries the delivery; the feed is the source of truth.
                log(f"event {event.get('id')} not applied: {e}")
                self.send_response(503)
                self.end_headers()
                return
            finally:
                c.close()
        self.send_response(204)
        self.end_headers()

    def do_GET(self):
        if self.path != "/state":
            self.send_response(404)
            self.end_headers()
            return
        with LOCK:
            c = db()
            try:
                body = json.dumps(state(c)).encode()
            finally:
                c.close()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def own(items):
    """The platform records who owns what, and tells Custodian's ledger."""
    c = db()
    for it in items:
        parent = it.get("parent")
        custodian(
            "PUT",
            f"/admin/v1/content/{urllib.parse.quote(it['kind'])}/{urllib.parse.quote(it['id'])}",
            {"owner": it["owner"], "personalRoot": bool(it.get("personalRoot")), "parent": parent},
        )
        c.execute(
            "INSERT INTO ownership (kind, id, owner, parent_kind, parent_id, personal_root)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, id) DO UPDATE SET owner = excluded.owner,"
            " parent_kind = excluded.parent_kind, parent_id = excluded.parent_id,"
            " personal_root = excluded.personal_root",
            (it["kind"], it["id"], it["owner"], parent and parent["kind"], parent and parent["id"],
             int(bool(it.get("personalRoot")))),
        )
    c.close()


def main(argv):
    cmd = argv[1] if len(argv) > 1 else "serve"
    if cmd == "own":
        own(json.loads(argv[2]))
    elif cmd == "resync":
        start = int(argv[3]) if len(argv) > 3 and argv[2] == "--from" else None
        with LOCK:
            resync(db(), start)
    elif cmd == "serve":
        Handler.hook = Webhook(os.environ["WEBHOOK_SECRET"])
        host, port = os.environ.get("LISTEN", "127.0.0.1:8090").rsplit(":", 1)
        with LOCK:
            resync(db())  # events missed while down, before any webhook
        server = HTTPServer((host, int(port)), Handler)
        print(f"listening on {host}:{server.server_address[1]}", flush=True)
        server.serve_forever()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
