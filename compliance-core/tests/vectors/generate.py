#!/usr/bin/env python3
"""Writes signature.json: test vectors for the X-Webhook-Signature scheme.

The MACs come from Python's own hmac module, not from the Rust code under test, so the
vectors check the Rust verifier against an independent implementation. Run from this
directory: python3 generate.py > signature.json
"""
import hashlib
import hmac
import json

SECRET = "your-webhook-secret"
OLD_SECRET = "old-webhook-secret"
TS = 1736937300  # 2025-01-15T10:35:00Z
CURL_BODY = ('{"event":"fossa.scan.completed","repository":{"url":"https://github.com/acme/'
             'payment-service"},"scan":{"revision":"abc123","branch":"main","status":"passed"}}')
FULL_BODY = """{
  "event": "fossa.scan.completed",
  "timestamp": "2025-01-15T10:35:00Z",
  "repository": {"name": "payment-service", "url": "https://github.com/acme/payment-service", "provider": "github"},
  "scan": {"revision": "abc123def456789", "branch": "main", "status": "failed", "issues_found": true}
}"""
UNICODE_BODY = '{"event":"fossa.scan.completed","note":"ünïcödé — 日本語 🚀"}'


def sig(secret, timestamp, body):
    message = f"{timestamp}.{body}".encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def header(secret, timestamp, body):
    return "sha256=" + sig(secret, timestamp, body)


def vector(name, expected, *, secret=SECRET, timestamp=str(TS), now=TS, body=CURL_BODY,
           header_value=None, note=None):
    if header_value is None:
        header_value = header(secret, timestamp, body)
    v = {"name": name, "secret": secret, "timestamp": timestamp, "now": now, "body": body,
         "header": header_value, "expected": expected}
    if note:
        v["note"] = note
    return v


good = header(SECRET, TS, CURL_BODY)
old = header(OLD_SECRET, TS, CURL_BODY)
vectors = [
    vector("document curl payload", "valid"),
    vector("document full example body, multi-line", "valid", body=FULL_BODY),
    vector("empty body", "valid", body=""),
    vector("unicode body", "valid", body=UNICODE_BODY),
    vector("uppercase hex digits", "valid", header_value="sha256=" + sig(SECRET, TS, CURL_BODY).upper()),
    vector("secret longer than the 64-byte HMAC block", "valid", secret="k" * 100),
    vector("unicode secret", "valid", secret="sëcret-🔑"),
    vector("rotation: old and new signatures, comma separated, receiver has new secret", "valid",
           header_value=f"{old},{good}"),
    vector("rotation: old and new signatures, space separated, receiver has old secret", "valid",
           secret=OLD_SECRET, header_value=f"{old} {good}"),
    vector("same signature header sent twice", "valid", header_value=[good, good]),
    vector("timestamp exactly 300 s old", "valid", now=TS + 300),
    vector("timestamp exactly 300 s ahead", "valid", now=TS - 300),
    vector("timestamp with leading zero is signed as sent", "valid", timestamp="0" + str(TS),
           note="the MAC covers the header text byte for byte"),
    vector("timestamp 301 s old", "stale_timestamp", now=TS + 301),
    vector("timestamp 301 s ahead", "future_timestamp", now=TS - 301),
    vector("signed with another secret", "mismatch", header_value=old),
    vector("body changed after signing", "mismatch",
           header_value=header(SECRET, TS, CURL_BODY.replace("passed", "failed"))),
    vector("timestamp changed after signing", "mismatch", timestamp=str(TS + 1), now=TS,
           header_value=good),
    vector("body signed without the timestamp", "mismatch",
           header_value="sha256=" + hmac.new(SECRET.encode(), CURL_BODY.encode(), hashlib.sha256).hexdigest()),
    vector("no signature header", "missing_header", header_value=False),
    vector("no timestamp header", "missing_header", timestamp=None, header_value=good),
    vector("empty signature header", "malformed_header", header_value=""),
    vector("sha1 prefix", "malformed_header", header_value="sha1=" + sig(SECRET, TS, CURL_BODY)),
    vector("hex without prefix", "malformed_header", header_value=sig(SECRET, TS, CURL_BODY)),
    vector("non-hex digit", "malformed_header", header_value="sha256=" + "g" * 64),
    vector("signature one digit short", "malformed_header", header_value=good[:-1]),
    vector("two signature headers that differ", "malformed_header", header_value=[good, old]),
    vector("timestamp not a number", "malformed_header", timestamp="17369373OO", header_value=good),
    vector("timestamp negative", "malformed_header", timestamp="-1", header_value=good),
    vector("timestamp with fraction", "malformed_header", timestamp=f"{TS}.5", header_value=good),
    vector("timestamp overflows 64 bits", "malformed_header", timestamp="99999999999999999999",
           header_value=good),
]

for v in vectors:
    if v["header"] is False:
        v["header"] = None

print(json.dumps(vectors, indent=2, ensure_ascii=False))
