#!/usr/bin/python3
"""Recomputes the AWS Signature Version 4 of recorded requests with botocore and
compares it with the signature the request carries.

Usage: /usr/bin/python3 sigv4_check.py REQUESTS_JSONL ACCESS_KEY SECRET REGION SERVICE
Prints one line per request and exits 1 if any signature differs. Uses the botocore
that Debian's awscli package bundles (import awscli first to put it on the path).
"""
import base64
import json
import re
import sys

import awscli  # noqa: F401  (Debian's awscli carries botocore on its path)
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

path, key, secret, region, service = sys.argv[1:6]
bad = 0
for n, line in enumerate(open(path)):
    r = json.loads(line)
    h = r["headers"]
    auth = h.get("authorization", "")
    m = re.match(r"AWS4-HMAC-SHA256 Credential=([^,]+), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)", auth)
    if not m:
        print(f"request {n}: {r['method']} {r['path']}: no SigV4 Authorization header")
        bad += 1
        continue
    signed = m.group(2).split(";")
    url = f"http://{h['host']}{r['path']}"
    body = base64.b64decode(r["body_b64"])
    req = AWSRequest(method=r["method"], url=url, data=body, headers={k: h[k] for k in signed})
    signer = (S3SigV4Auth if service == "s3" else SigV4Auth)(Credentials(key, secret), service, region)
    req.context["timestamp"] = h["x-amz-date"]
    if service == "s3":
        req.context["payload_signing_enabled"] = True
    canonical = signer.canonical_request(req)
    want = signer.signature(signer.string_to_sign(req, canonical), req)
    ok = want == m.group(3)
    bad += not ok
    print(f"request {n}: {r['method']} {r['path'][:70]}: signature {'OK' if ok else 'MISMATCH'}"
          + ("" if ok else f"\n  botocore canonical request:\n{canonical}"))
sys.exit(1 if bad else 0)
