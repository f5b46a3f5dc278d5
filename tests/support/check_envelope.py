#!/usr/bin/env python3
"""Independent check of envelope lines (docs/envelope.md) with Python's json module.

usage: check_envelope.py LINES_FILE [PAYLOAD_FILE]

For every '\n'-terminated line of LINES_FILE prints one JSON object:
  {"parses": true, "raw_controls": false, "encoding": "inline"|"text"|"base64",
   "note": <payload_note or null>, "channel": ..., "source": ..., "gateway_id": ...,
   "payload_matches": true|false|null}
payload_matches compares the payload carried by the line with the bytes of
PAYLOAD_FILE (decoded per payload_encoding; inline: the line ends with those bytes + "}").
Exit 1 if a line does not parse.
"""
import base64
import json
import sys

data = open(sys.argv[1], "rb").read()
want = open(sys.argv[2], "rb").read() if len(sys.argv) > 2 else None
status = 0
for raw in data.split(b"\n")[:-1]:
    out = {"raw_controls": any(b < 0x20 for b in raw)}
    try:
        obj = json.loads(raw.decode("utf-8"))
    except Exception as e:  # noqa: BLE001 - report any failure
        out.update(parses=False, error=str(e)[:200])
        print(json.dumps(out))
        status = 1
        continue
    enc = obj.get("payload_encoding", "inline")
    out.update(parses=True, encoding=enc, note=obj.get("payload_note"), channel=obj.get("channel"),
               source=obj.get("source"), gateway_id=obj.get("gateway_id"), payload_matches=None)
    if want is not None:
        if enc == "text":
            got = obj["payload"].encode("utf-8")
        elif enc == "base64":
            got = base64.b64decode(obj["payload"])
        else:
            got = want if raw.endswith(want + b"}") else None
        out["payload_matches"] = got == want
    print(json.dumps(out))
sys.exit(status)
