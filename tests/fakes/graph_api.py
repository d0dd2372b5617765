#!/usr/bin/env python3
"""A fake of Meta's Graph API for one Facebook Page, for agentdesk's end-to-end tests.

Written independently of the plugin under test (Python's own hmac/hashlib/json): it signs the
webhooks it delivers exactly as Meta documents (X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
the raw body with the app secret>, JSON with non-ASCII escaped), and checks the plugin's Send API
calls as Meta does: the Page access token (error 190), messaging_type and tags, the 24-hour
window and HUMAN_AGENT's 7 days (error 10), text length (error 100), rate limits (error 613),
answering with Meta's documented error bodies. Echoes of accepted messages carry the app id and
the request's metadata, as Meta's message_echoes do.

Usage: graph_api.py --app-secret S --page-id P --app-id A --token T
Prints "port N" once listening on 127.0.0.1. Control endpoints live under /_fake/.
"""

import argparse
import hashlib
import hmac
import json
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DAY_MS = 24 * 3600 * 1000


def now_ms():
    return int(time.time() * 1000)


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.app_secret = args.app_secret.encode()
        self.page_id = args.page_id
        self.app_id = args.app_id
        self.tokens = {args.token}
        self.webhook = None
        self.last_inbound = {}  # psid -> ms of the customer's last message
        self.sent = []  # accepted messages
        self.actions = []  # sender actions
        self.refusals = []  # (code, body) answered
        self.rate_limit_next = 0
        self.hang_next = 0
        self.echoes = True
        self.human_agent_allowed = True
        self.next_mid = 0
        self.deliveries = queue.Queue()
        self.acked = 0
        self.attempts = 0
        self.queued = 0
        self.pace = 0.0
        self.profiles = {}  # psid -> {"first_name", "last_name"}
        self.window_closed = []  # psids whose window Meta considers closed whatever we think
        self.profile_lookups = 0

    def sign(self, body):
        return "sha256=" + hmac.new(self.app_secret, body, hashlib.sha256).hexdigest()

    def payload(self, entries):
        body = {
            "object": "page",
            "entry": [
                {"id": self.page_id, "time": now_ms(), "messaging": e["messaging"]}
                for e in entries
            ],
        }
        # Meta escapes non-ASCII characters; json.dumps does by default.
        return json.dumps(body).encode()

    def note_inbound(self, entries):
        with self.lock:
            for e in entries:
                for m in e["messaging"]:
                    msg = m.get("message") or {}
                    if msg.get("is_echo"):
                        continue
                    psid = m["sender"]["id"]
                    ts = m.get("timestamp", now_ms())
                    self.last_inbound[psid] = max(self.last_inbound.get(psid, 0), ts)


def post(url, body, signature, timeout=5.0):
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if signature is not None:
        request.add_header("X-Hub-Signature-256", signature)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return 0, str(e)


def deliverer(state):
    """Meta's retries: a delivery is sent again until it is answered 200."""
    while True:
        body = state.deliveries.get()
        while True:
            with state.lock:
                state.attempts += 1
                url = state.webhook
            status, _ = post(url, body, state.sign(body), timeout=3.0)
            if status == 200:
                with state.lock:
                    state.acked += 1
                    pace = state.pace
                time.sleep(pace)
                break
            time.sleep(0.05)


def meta_error(code, message, subcode=None, kind="OAuthException"):
    error = {"message": message, "type": kind, "code": code, "fbtrace_id": "AfakeTrace"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    state = None

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length)

    def do_GET(self):
        s = self.state
        if self.path == "/_fake/sent":
            with s.lock:
                return self.answer(200, {"sent": s.sent, "actions": s.actions, "refusals": s.refusals,
                                         "profile_lookups": s.profile_lookups})
        if self.path == "/_fake/progress":
            with s.lock:
                return self.answer(200, {"acked": s.acked, "queued": s.queued, "attempts": s.attempts})
        path = self.path.split("?")[0]
        if path.startswith("/_cdn/"):
            # Meta's CDN: a signed link, no token. The bytes name the file.
            data = ("attachment bytes of " + path[len("/_cdn/"):]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        psid = path.rsplit("/", 1)[-1]
        if self.token() not in s.tokens:
            return self.refuse(401, meta_error(190, "Error validating access token: Session has expired.", 463))
        with s.lock:
            s.profile_lookups += 1
            profile = s.profiles.get(psid)
        if profile is None:
            return self.answer(400, meta_error(100, "(#100) Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation" % psid, 33, "GraphMethodException"))
        self.answer(200, dict(profile, id=psid))

    def do_POST(self):
        s = self.state
        raw = self.body()
        if self.path.startswith("/_fake/"):
            return self.control(self.path[len("/_fake/"):], json.loads(raw or b"{}"))
        path = self.path.split("?")[0]
        if path.endswith("/%s/messages" % s.page_id) or path.endswith("/me/messages"):
            return self.send_api(raw)
        self.answer(404, meta_error(803, "Unknown path components: " + path))

    def control(self, what, req):
        s = self.state
        if what == "config":
            with s.lock:
                for key in ("rate_limit_next", "hang_next", "echoes", "human_agent_allowed", "webhook", "profiles", "window_closed"):
                    if key in req:
                        setattr(s, key, req[key])
                if req.get("expire_token"):
                    s.tokens = set()
            return self.answer(200, {"ok": True})
        if what == "deliver":
            # Signs and delivers one webhook now; answers with the plugin's status.
            entries = req.get("entries", [])
            body = req["raw"].encode() if "raw" in req else s.payload(entries)
            sign = req.get("sign", "good")
            signature = {"good": s.sign(body), "bad": "sha256=" + "0" * 64, "none": None}[sign]
            if "raw" not in req:
                s.note_inbound(entries)
            repeat = int(req.get("times", 1))
            results = [post(s.webhook, body, signature) for _ in range(repeat)]
            return self.answer(200, {"status": [r[0] for r in results], "body": [r[1] for r in results]})
        if what == "queue":
            # Queued deliveries, retried until answered 200 (Meta's behaviour), each of the
            # four senders waiting pace_ms after a success.
            with s.lock:
                s.pace = req.get("pace_ms", 0) / 1000.0
            for entries in req["webhooks"]:
                s.note_inbound(entries)
                with s.lock:
                    s.queued += 1
                s.deliveries.put(s.payload(entries))
            return self.answer(200, {"queued": len(req["webhooks"])})
        self.answer(404, {"error": "unknown control " + what})

    def token(self):
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            return auth[len("Bearer "):]
        if "access_token=" in self.path:
            return self.path.split("access_token=")[1].split("&")[0]
        return None

    def refuse(self, status, body):
        with self.state.lock:
            self.state.refusals.append(body["error"]["code"])
        self.answer(status, body)

    def send_api(self, raw):
        s = self.state
        if self.token() not in s.tokens:
            return self.refuse(401, meta_error(190, "Error validating access token: Session has expired on Sunday, 29-Nov-26 09:00:00 PST.", 463))
        req = json.loads(raw)
        psid = req.get("recipient", {}).get("id")
        with s.lock:
            if s.rate_limit_next > 0:
                s.rate_limit_next -= 1
                limited = True
            else:
                limited = False
        if limited:
            return self.refuse(400, meta_error(613, "(#613) Calls to this api have exceeded the rate limit."))
        if "sender_action" in req:
            with s.lock:
                s.actions.append({"psid": psid, "action": req["sender_action"]})
            return self.answer(200, {"recipient_id": psid})
        kind = req.get("messaging_type")
        tag = req.get("tag")
        if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            return self.refuse(400, meta_error(100, "(#100) Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}"))
        if kind == "MESSAGE_TAG" and tag is None:
            return self.refuse(400, meta_error(100, "(#100) Tag is required for MESSAGE_TAG"))
        message = req.get("message", {})
        text = message.get("text", "")
        if len(text) > 2000:
            return self.refuse(400, meta_error(100, "(#100) Length of param message[text] must be less than or equal to 2000"))
        with s.lock:
            last = s.last_inbound.get(psid)
        age = now_ms() - last if last is not None else None
        in_standard = age is not None and age < DAY_MS
        in_human = age is not None and age < 7 * DAY_MS and tag == "HUMAN_AGENT" and s.human_agent_allowed
        if psid in s.window_closed:
            in_standard = in_human = False
        if not (in_standard or in_human):
            return self.refuse(400, meta_error(10, "(#10) This message is sent outside of allowed window.", 2018278))
        with s.lock:
            s.next_mid += 1
            mid = "m_out_%d" % s.next_mid
            s.sent.append({"psid": psid, "text": text, "messaging_type": kind, "tag": tag,
                           "metadata": message.get("metadata"), "mid": mid})
            hang = s.hang_next > 0
            if hang:
                s.hang_next -= 1
            echoes = s.echoes
        if echoes:
            echo = [{"messaging": [{"sender": {"id": s.page_id}, "recipient": {"id": psid},
                     "timestamp": now_ms(),
                     "message": {"mid": mid, "text": text, "is_echo": True,
                                 "app_id": int(s.app_id), "metadata": message.get("metadata")}}]}]
            body = s.payload(echo)
            threading.Thread(target=post, args=(s.webhook, body, s.sign(body)), daemon=True).start()
        if hang:
            # Accepted, but the answer never comes: the caller's outcome is unknown.
            time.sleep(3.0)
            return
        self.answer(200, {"recipient_id": psid, "message_id": mid})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--app-secret", required=True)
    parser.add_argument("--page-id", required=True)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    state = State(args)
    Handler.state = state
    for _ in range(4):
        threading.Thread(target=deliverer, args=(state,), daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("port %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
