#!/usr/bin/env python3
"""Builds seed corpora for the fuzz targets from the real data in the repository.

    fuzz/make-seeds.py OUT_DIR

Writes OUT_DIR/<target>/<n> files. Seeds are built at fuzz time, not committed: the
repository's data (tests/data, examples) is the source of truth. Each seed starts
with the option bytes the target reads first (see the target's .cc).
"""
import gzip
import json
import os
import pathlib
import struct
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = pathlib.Path(sys.argv[1])


def write(target, seeds):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(seeds):
        (d / f"seed-{i:04d}").write_bytes(s)


def lines(path, limit):
    data = path.read_bytes()
    return [l for l in data.splitlines() if l and not l.startswith(b"#")][:limit]


nmea_files = sorted((ROOT / "tests/data/nmea").glob("*.log"))
nmea = [l for f in nmea_files for l in lines(f, 60)]
write("nmea_fuzz", nmea)

telosb = lines(ROOT / "tests/data/telosb-multihop-500.csv", 40)
uci = lines(ROOT / "examples/data/uci-airquality-2000.csv", 40)
# flags: bits 0-1 separator (0 ',', 1 ';', 2 tab, 3 '|'), bit 2 decimal comma, bit 3 columns.
csv = [b"\x00" + b"\n".join(telosb[:k]) for k in (2, 5, 40)]
csv += [b"\x00" + b"\n".join(uci[:k]) for k in (2, 10)]
csv += [b"\x05" + b"\n".join(l.replace(b",", b";").replace(b".", b",") for l in telosb[:5])]
csv += [b"\x08\x03a\nb\nc\n1,2,3\n\"x,y\",,-0.5e3"]
write("csv_fuzz", csv)

# parse_fuzz: flags (bits 0-1 format csv/kv/regex/nmea, bit 2 through a JSON member,
# bits 3-4 separator, bit 5 pair separator ';'), then the text.
parse = [b"\x00" + l for l in telosb[:3]] + [b"\x08" + l.replace(b",", b";").replace(b".", b",") for l in uci[1:3]]
parse += [b"\x01temp=21.5 hum=40 site=\"line 1\"", b"\x21a: 1; b: two words;", b"\x05x=1 y=\"q\\\"\""]
parse += [b"\x02boiler T=-4.25 C", b"\x06rh: 55 %"] + [b"\x03" + l for l in nmea[:20]] + [b"\x07" + nmea[0]]
write("parse_fuzz", parse)

with gzip.open(ROOT / "examples/data/lorawan-tourperret-2000.ndjson.gz") as f:
    ndjson = [next(f).rstrip(b"\n") for _ in range(30)]
write("json_lines_fuzz", ndjson + [b"[1,2,{\"a\":null}]", b"\"text\"", b"-0.0e+1"])

# serial_framer_fuzz: mode, max_frame_bytes, number of cuts, cuts, mode options, stream.
stream = b"\r\n".join(nmea[:12]) + b"\r\n"
framer = [
    bytes([0, 80, 3, 7, 13, 30]) + stream,
    bytes([1, 80, 2, 5, 9, 1, 2]) + b"\r\n" + stream,
    bytes([1, 20, 0, 0, 0]) + b";" + b"a;bb;;" + b"x" * 40 + b";tail",
    bytes([2, 40, 1, 11, 16, 2]) + b"\xaa\x55" + b"junk\xaa\x55" + bytes(range(40)),
]
write("serial_framer_fuzz", framer)


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode(records):
    """buffer/FORMAT.md, "Segment encoding": zigzag ts delta, source, channel, type, payload."""
    out, prev = bytearray(), 0
    for ts, source, channel, ctype, payload in records:
        d = ts - prev
        prev = ts
        out += varint((d << 1) ^ (d >> 63) & 0xFFFFFFFFFFFFFFFF)
        for s in (source, channel):
            out += varint(len(s)) + s
        out += bytes([ctype]) + varint(len(payload)) + payload
    return bytes(out)


recs = [(1_700_000_000_000_000_000 + i * 1_000_000, b"plant", b"sensors/t1", 3, l) for i, l in enumerate(telosb[1:9])]
raw = encode(recs)
zst = subprocess.run(["zstd", "-q", "-c", "-3", "--check"], input=raw, stdout=subprocess.PIPE, check=True).stdout
# Decode mode (even first byte): codec, count, first_seq, blob. Round trip (odd): records.
codec = [b"\x00\x00" + bytes([len(recs), 1]) + raw, b"\x00\x01" + bytes([len(recs), 1]) + zst]
rt = b"\x01"
for ts, source, channel, ctype, payload in recs[:4]:
    rt += struct.pack(">q", ts) + bytes([ctype]) + b"\x00" + source + b"\n" + channel + b"\n" + payload + b"\n"
# Schema 3 time: an event time and an unsynchronized stamp with its boot.
rt += (struct.pack(">q", 12_000_000_000) + bytes([2]) + b"\x03" + struct.pack(">q", 1_430_000_000_000_000_000)
       + struct.pack(">q", 5_000_000_000) + b"11111111-1111-1111-1111-111111111111\n" + b"gps\nGNRMC\n$GNRMC\n")
codec.append(rt)
write("segment_codec_fuzz", codec)

configs = [p.read_bytes() for p in sorted((ROOT / "examples").glob("*.toml"))]
write("config_fuzz", configs)

# fleet_push_fuzz: mode byte (0 unsigned, 1 unsigned with a key installed, 2 signed).
push_toml = b"version = 2\n" + b"\n".join(
    l for l in configs[-1].splitlines() if not l.startswith(b"version"))
push_json = json.dumps({"version": 3, "sinks": {"cloud": {"type": "http", "url": "http://127.0.0.1:1/x"}}}).encode()
envelope = json.dumps({"document": push_toml.decode(), "signature": "A" * 86 + "=="}).encode()
fleet = [b"\x00" + push_toml, b"\x00" + push_json, b"\x01" + envelope, b"\x02" + push_toml, b"\x02" + push_json]
# Issue 12 item 2: a push nested 100,000 levels deep crashed the agent (stack overflow).
fleet.append(b"\x00{\"version\":1,\"x\":" + b"{\"a\":" * 100_000 + b"1" + b"}" * 100_000 + b"}")
write("fleet_push_fuzz", fleet)

# envelope_fuzz: flags (bits 0-2 content type % 5, bit 6 channel first), seq, ts,
# [channel LF], time (bit 0 event time, bits 1-2 ts_source % 3; unsynced: boot id LF), payload.
env = [b"\x01\x07\x09\x00" + l for l in ndjson[:10]]
env += [b"\x03\x01\x01\x01" + l for l in telosb[:5]] + [b"\x02\x02\x02\x01" + l for l in nmea[:5]]
env += [b"\x40\x05\x05sensors/\xff\xfe\n\x00\x00\x01\x02\xff"]
env += [b"\x01\x07\x09\x03b40cf730-9432-4ae1-972e-97f1e080d904\n{}", b"\x01\x07\x09\x02\xff\xfe\n{}",
        b"\x01\x07\x09\x04{}"]
write("envelope_fuzz", env)

write("http_response_fuzz", [b"120", b"0", b"Wed, 21 Oct 2015 07:28:00 GMT", b"Sun, 06 Nov 2094 08:49:37 GMT"])
