#!/usr/bin/python3
"""A fake of the X API v2 and of X's webhooks, for agentdesk's tests.

Deliveries are described in the Account Activity API's shape; with "format": "xaa" the fake
delivers them as the X Activity API does instead (docs.x.com, "X Activity API event payload
examples"): one `{"data": {event_uuid, filter, event_type, tag, payload, includes}}` envelope per
event, DMs as `dm.received`/`dm.sent` (legacy `direct_message_events` and a `users` map of
`{"data": user}`), mentions as `post.mention.create` (a v2 Post, its author in `includes.users`).

Independent of the plugin under test: it signs deliveries (x-twitter-webhooks-signature:
sha256=<base64 HMAC-SHA256 of the raw body with the consumer secret>) and checks the CRC answer
with Python's hmac, and verifies the OAuth 1.0a signature of every API call with Debian's
python3-oauthlib (plus the consumer key, token, timestamp window and nonce reuse). Answers as X
documents: 201 with data, 401 Unauthorized, 429 with x-rate-limit-reset, 400 for a post over
280 weighted characters (its own count: twitter-text v3 weights, URLs 23).

Usage: x_api.py --consumer-key K --consumer-secret S --token T --token-secret TS --account ID
Prints "port N" once listening on 127.0.0.1. Control endpoints live under /_fake/.
"""

import argparse
import base64
import hashlib
import hmac
import json
import queue
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils

URL = re.compile(r"(?i)\b(?:https?://|www\.)\S+")


def weighted(text):
    """twitter-text v3: weight 1 in four ranges, else 2; each URL 23; an emoji sequence 2."""
    total = 0
    for match in URL.finditer(text):
        total += 23
    text = URL.sub("", text)
    light = [(0, 4351), (8192, 8205), (8208, 8223), (8242, 8247)]
    skip_next = False
    previous_emoji = False
    for ch in text:
        cp = ord(ch)
        if skip_next:
            skip_next = False
            continue
        if previous_emoji and (cp == 0xFE0F or 0x1F3FB <= cp <= 0x1F3FF):
            continue
        if previous_emoji and cp == 0x200D:
            skip_next = True
            continue
        previous_emoji = 0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF
        total += 1 if any(a <= cp <= b for a, b in light) and not previous_emoji else 2
    return total


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.args = args
        self.secret = args.consumer_secret.encode()
        self.webhook = None
        self.sent = []
        self.refusals = []
        self.rate_limit_next = 0
        self.hang_next = 0
        self.revoked = False
        self.nonces = set()
        self.next_id = 1000
        self.deliveries = queue.Queue()
        self.acked = 0
        self.attempts = 0
        self.queued = 0
        self.pace = 0.0

    def sign(self, body):
        return "sha256=" + base64.b64encode(hmac.new(self.secret, body, hashlib.sha256).digest()).decode()


def iso(ms):
    """ms since the epoch as X's v2 dates: 2026-07-24T21:23:23.000Z."""
    ms = int(ms or 0)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def to_xaa(activity, account):
    """An Account Activity delivery as the X Activity API's envelopes, one per event."""
    users = activity.get("users", {})
    envelopes = []
    for event in activity.get("direct_message_events", []):
        sender = event.get("message_create", {}).get("sender_id", "")
        v2_users = {
            uid: {"data": {"id": uid, "name": u.get("name", ""), "username": u.get("screen_name", "")}}
            for uid, u in users.items()
        }
        envelopes.append({
            "event_uuid": str(time.time_ns()),
            "filter": {"user_id": account},
            "event_type": "dm.sent" if sender == account else "dm.received",
            "tag": "dm",
            "payload": {"direct_message_events": [event], "users": v2_users},
        })
    for tweet in activity.get("tweet_create_events", []):
        user = tweet["user"]
        text = tweet.get("extended_tweet", {}).get("full_text") if tweet.get("truncated") else None
        text = text or tweet.get("text", "")
        envelopes.append({
            "event_uuid": str(time.time_ns()),
            "filter": {"user_id": account},
            "event_type": "post.mention.create",
            "tag": "mentions",
            "payload": {
                "id": tweet["id_str"], "text": text, "author_id": user["id_str"],
                "created_at": iso(tweet.get("timestamp_ms")), "conversation_id": tweet["id_str"],
                "edit_history_tweet_ids": [tweet["id_str"]], "lang": "en",
            },
            "includes": {"users": [
                {"id": user["id_str"], "name": user.get("name", ""), "username": user.get("screen_name", "")}
            ]},
        })
    return [json.dumps({"data": e}).encode() for e in envelopes]


def http(method, url, body=None, headers=None, timeout=5.0):
    request = urllib.request.Request(url, data=body, method=method)
    for k, v in (headers or {}).items():
        request.add_header(k, v)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return 0, str(e)


def deliverer(state):
    """X's retries: a delivery not answered 200 is sent again (X retries failed deliveries)."""
    while True:
        body = state.deliveries.get()
        while True:
            with state.lock:
                state.attempts += 1
                url = state.webhook
            headers = {"Content-Type": "application/json",
                       "x-twitter-webhooks-signature": state.sign(body)}
            status, _ = http("POST", url, body, headers, timeout=3.0)
            if status == 200:
                with state.lock:
                    state.acked += 1
                    pace = state.pace
                time.sleep(pace)
                break
            time.sleep(0.05)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    state = None

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        s = self.state
        if self.path == "/_fake/sent":
            with s.lock:
                return self.answer(200, {"sent": s.sent, "refusals": s.refusals})
        if self.path == "/_fake/progress":
            with s.lock:
                return self.answer(200, {"acked": s.acked, "queued": s.queued, "attempts": s.attempts})
        self.answer(404, {"title": "Not Found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.startswith("/_fake/"):
            return self.control(self.path[len("/_fake/"):], json.loads(raw or b"{}"))
        return self.api(raw)

    def control(self, what, req):
        s = self.state
        if what == "config":
            with s.lock:
                for key in ("rate_limit_next", "hang_next", "webhook", "revoked"):
                    if key in req:
                        setattr(s, key, req[key])
            return self.answer(200, {"ok": True})
        if what == "deliver":
            activity = dict(req["activity"])
            activity.setdefault("for_user_id", s.args.account)
            if req.get("format", "account-activity") == "xaa":
                bodies = to_xaa(activity, s.args.account)
            else:
                bodies = [json.dumps(activity).encode()]
            statuses = []
            for body in bodies:
                headers = {"Content-Type": "application/json"}
                if req.get("sign", "good") == "good":
                    headers["x-twitter-webhooks-signature"] = s.sign(body)
                elif req.get("sign") == "bad":
                    headers["x-twitter-webhooks-signature"] = s.sign(body + b" ")
                for _ in range(int(req.get("times", 1))):
                    statuses.append(http("POST", s.webhook, body, headers)[0])
            return self.answer(200, {"status": statuses})
        if what == "queue":
            # Queued deliveries, retried until answered 200, each of the four senders waiting
            # pace_ms after a success.
            with s.lock:
                s.pace = req.get("pace_ms", 0) / 1000.0
            for activity in req["activities"]:
                activity = dict(activity)
                activity.setdefault("for_user_id", s.args.account)
                with s.lock:
                    s.queued += 1
                s.deliveries.put(json.dumps(activity).encode())
            return self.answer(200, {"queued": len(req["activities"])})
        if what == "crc":
            token = "challenge-%d" % time.time_ns()
            status, text = http("GET", s.webhook + "?crc_token=" + urllib.parse.quote(token))
            expected = s.sign(token.encode())
            ok = status == 200 and json.loads(text).get("response_token") == expected
            return self.answer(200, {"ok": ok, "status": status, "answer": text})
        self.answer(404, {"error": "unknown control " + what})

    def refuse(self, status, body, headers=None):
        with self.state.lock:
            self.state.refusals.append(status)
        self.answer(status, body, headers)

    def oauth_ok(self):
        s = self.state
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("OAuth "):
            return "no OAuth header"
        # The header's values are percent-encoded (RFC 5849 3.5.1).
        fields = {k: oauth_utils.unescape(v) for k, v in oauth_utils.parse_authorization_header(auth)}
        if fields.get("oauth_consumer_key") != s.args.consumer_key or fields.get("oauth_token") != s.args.token:
            return "unknown consumer key or token"
        if fields.get("oauth_signature_method") != "HMAC-SHA1" or fields.get("oauth_version", "1.0") != "1.0":
            return "wrong signature method or version"
        if abs(int(fields.get("oauth_timestamp", "0")) - time.time()) > 300:
            return "timestamp outside 5 minutes"
        with s.lock:
            nonce = fields.get("oauth_nonce")
            if not nonce or nonce in s.nonces:
                return "nonce reused"
            s.nonces.add(nonce)
        uri = "http://%s%s" % (self.headers.get("Host"), self.path)
        request = OAuthRequest(uri, http_method="POST", body=None, headers={"Authorization": auth})
        request.params = oauth_signature.collect_parameters(
            uri_query=urllib.parse.urlparse(uri).query, headers={"Authorization": auth},
            exclude_oauth_signature=True)
        request.signature = fields.get("oauth_signature")
        if not oauth_signature.verify_hmac_sha1(request, s.args.consumer_secret, s.args.token_secret):
            base = oauth_signature.signature_base_string(
                "POST", oauth_signature.base_string_uri(uri),
                oauth_signature.normalize_parameters(request.params))
            return "signature mismatch; base string %s; header %s" % (base, auth)
        return None

    def api(self, raw):
        s = self.state
        problem = self.oauth_ok()
        if problem is not None:
            sys.stderr.write("x_api.py: 401 for %s: %s\n" % (self.path, problem))
        if problem is not None or s.revoked:
            return self.refuse(401, {"title": "Unauthorized", "type": "about:blank", "status": 401,
                                     "detail": "Unauthorized", "fake_reason": problem or "revoked"})
        with s.lock:
            limited = s.rate_limit_next > 0
            if limited:
                s.rate_limit_next -= 1
        if limited:
            reset = int(time.time()) + 1
            return self.refuse(429, {"title": "Too Many Requests", "detail": "Too Many Requests",
                                     "type": "about:blank", "status": 429},
                               {"x-rate-limit-limit": "200", "x-rate-limit-remaining": "0",
                                "x-rate-limit-reset": str(reset)})
        body = json.loads(raw)
        text = body.get("text", "")
        dm = re.fullmatch(r"/2/dm_conversations/with/(\w+)/messages", self.path)
        with s.lock:
            s.next_id += 1
            new_id = str(s.next_id)
        if dm:
            with s.lock:
                s.sent.append({"kind": "dm", "to": dm.group(1), "text": text})
                hang = s.hang_next > 0
                if hang:
                    s.hang_next -= 1
            if hang:
                # Created, but the answer never comes: the caller's outcome is unknown.
                time.sleep(3.0)
                return
            return self.answer(201, {"data": {"dm_conversation_id": "%s-%s" % (s.args.account, dm.group(1)),
                                              "dm_event_id": new_id}})
        if self.path == "/2/tweets":
            if weighted(text) > 280:
                return self.refuse(400, {"title": "Invalid Request", "type": "https://api.twitter.com/2/problems/invalid-request",
                                         "detail": "One or more parameters to your request was invalid.",
                                         "errors": [{"message": "Your Tweet text is too long."}]})
            reply = (body.get("reply") or {}).get("in_reply_to_tweet_id")
            with s.lock:
                s.sent.append({"kind": "tweet", "in_reply_to": reply, "text": text, "weighted": weighted(text)})
            return self.answer(201, {"data": {"id": new_id, "text": text}})
        self.answer(404, {"title": "Not Found", "detail": "no route " + self.path})


def main():
    parser = argparse.ArgumentParser()
    for name in ("--consumer-key", "--consumer-secret", "--token", "--token-secret", "--account"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    Handler.state = State(args)
    for _ in range(4):
        threading.Thread(target=deliverer, args=(Handler.state,), daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("port %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
