#!/usr/bin/env bash
# The main job on its built-in default, no cloud account needed:
#   local mosquitto (private, loopback) + a serial GPS (a pseudo-terminal replaying a real
#   u-blox 8 capture) -> edgeferry (MQTT and serial sources -> buffer -> outbox, and a
#   reduced air-quality stream to a second "cloud" broker)
# replays real recorded sensor data and prints a summary.
# Builds the release preset first if needed. Needs scripts/install-deps.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${EDGEFERRY_BUILD_DIR:-$ROOT/build/release}

# Built every time (a no-op when up to date): a binary older than the sources would run
# the demo's configuration against yesterday's code. EDGEFERRY_BUILD_DIR: a ready build.
if [ -z "${EDGEFERRY_BUILD_DIR:-}" ]; then
  echo "== building (release preset)"
  cmake --preset release >/dev/null
  cmake --build --preset release -j"$(nproc)" | tail -n 1
fi
EF=$BUILD/agent/edgeferry
REPLAY=$BUILD/tools/replay/edgeferry-replay

WORK=$(mktemp -d /tmp/edgeferry-demo.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  [ -n "${AGENT:-}" ] && kill -TERM "$AGENT" 2>/dev/null || true
  [ -n "${GPS:-}" ] && kill -TERM "$GPS" 2>/dev/null || true
  [ -n "${BROKER:-}" ] && kill "$BROKER" 2>/dev/null || true
  [ -n "${CLOUD:-}" ] && kill "$CLOUD" 2>/dev/null || true
  [ -n "${CLOUD_SUB:-}" ] && kill "$CLOUD_SUB" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== work dir $WORK, broker 127.0.0.1:$PORT"
# mosquitto drops QoS 1 messages beyond max_queued_messages (default 1000) for a
# subscriber that falls behind a burst: a gateway's broker must not (docs/operations.md).
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n' "$PORT" > "$WORK/mosquitto.conf"
[ "$(id -u)" = 0 ] && echo "user root" >> "$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" > "$WORK/mosquitto.log" 2>&1 &
BROKER=$!
# The "cloud": a second broker, with a subscriber standing in for the cloud application.
CLOUD_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed "s/^listener $PORT /listener $CLOUD_PORT /" "$WORK/mosquitto.conf" > "$WORK/cloud.conf"
mosquitto -c "$WORK/cloud.conf" > "$WORK/cloud.log" 2>&1 &
CLOUD=$!
sed -e "s|@PORT@|$PORT|g" -e "s|@CLOUD_PORT@|$CLOUD_PORT|g" -e "s|@DATA@|$WORK/data|g" -e "s|@SERIAL@|$WORK/gps0|g" \
  examples/demo.toml > "$WORK/edgeferry.toml"
# The serial GPS: real receiver output (tests/data/README.md) at 115200 baud.
"$REPLAY" --serial "$WORK/gps0" --baud 115200 --strip-comments --hold tests/data/nmea/ublox-8.log \
  > "$WORK/gps.txt" 2> "$WORK/gps.log" &
GPS=$!
"$EF" check --config "$WORK/edgeferry.toml"
for p in "$PORT" "$CLOUD_PORT"; do
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
done
mosquitto_sub -p "$CLOUD_PORT" -t 'dt/#' -q 1 > "$WORK/cloud-received.ndjson" 2> "$WORK/cloud-sub.log" &
CLOUD_SUB=$!

"$EF" run --config "$WORK/edgeferry.toml" > "$WORK/edgeferry.log" 2>&1 &
AGENT=$!
for _ in $(seq 100); do [ "$(grep -c 'connected to' "$WORK/edgeferry.log")" -ge 2 ] && break; sleep 0.1; done

echo "== replaying real sensor data (examples/data/README.md)"
START=$(date +%s.%N)
"$REPLAY" -q --broker "tcp://127.0.0.1:$PORT" --topic lorawan/tourperret/uplink examples/data/lorawan-tourperret-2000.ndjson.gz | tee "$WORK/replay.txt"
"$REPLAY" -q --broker "tcp://127.0.0.1:$PORT" --topic airquality/uci/row examples/data/uci-airquality-2000.csv | tee -a "$WORK/replay.txt"
PUBLISHED=$(awk '{n += $2} END {print n}' "$WORK/replay.txt")
AQ_PUBLISHED=$(tail -1 "$WORK/replay.txt" | awk '{print $2}')  # the cloud's route: air quality only
PUB_BYTES=$(awk '{n += $4} END {print n}' "$WORK/replay.txt")

count_delivered() { find "$WORK/data/outbox" -name '*.ndjson.zst' -print0 2>/dev/null | xargs -0 -r zstdcat 2>/dev/null | wc -l; }
count_cloud() { wc -l < "$WORK/cloud-received.ndjson"; }
count_stored() { "$EF" buffer stats --json --config "$WORK/edgeferry.toml" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["appended_total"])' 2>/dev/null || echo 0; }
for _ in $(seq 100); do [ -s "$WORK/gps.txt" ] && break; sleep 0.1; done
echo "   serial GPS: $(cat "$WORK/gps.txt")"
echo "== waiting for the outbox to receive every stored record"
DELIVERED=0; STABLE=0; PREV_CLOUD=-1
for _ in $(seq 300); do
  DELIVERED=$(count_delivered); STORED=$(count_stored); IN_CLOUD=$(count_cloud)
  printf '\r   outbox %s / %s stored, cloud %s (%s air-quality rows + GPS fixes) (%s published over MQTT)' \
    "$DELIVERED" "$STORED" "$IN_CLOUD" "$AQ_PUBLISHED" "$PUBLISHED"
  # The cloud also gets the GPS fixes, as many as the receiver sent RMC sentences: done
  # when its count stops moving once the outbox has everything.
  if [ "$DELIVERED" -ge "$PUBLISHED" ] && [ "$DELIVERED" -ge "$STORED" ] && [ "$IN_CLOUD" -gt "$AQ_PUBLISHED" ] &&
     [ "$IN_CLOUD" -eq "$PREV_CLOUD" ]; then
    STABLE=$((STABLE + 1)); [ "$STABLE" -ge 3 ] && break
  else
    STABLE=0
  fi
  PREV_CLOUD=$IN_CLOUD
  sleep 0.2
done
echo
END=$(date +%s.%N)
kill -TERM "$AGENT"; wait "$AGENT" || { echo "edgeferry exited with an error; log: $WORK/edgeferry.log"; exit 1; }
AGENT=

"$EF" buffer stats --json --config "$WORK/edgeferry.toml" > "$WORK/stats.json"
"$EF" dlq list --config "$WORK/edgeferry.toml" > "$WORK/dlq.txt"
find "$WORK/data/outbox" -name '*.ndjson.zst' -print0 | xargs -0 zstdcat > "$WORK/delivered.ndjson"
python3 - "$WORK" "$PUBLISHED" "$PUB_BYTES" "$START" "$END" <<'PY'
import json, os, sys, glob
work, published, pub_bytes, start, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
st = json.load(open(f"{work}/stats.json"))
seqs, sources = [], {}
for line in open(f"{work}/delivered.ndjson"):
    r = json.loads(line); seqs.append(r["seq"]); sources[r["source"]] = sources.get(r["source"], 0) + 1
files = glob.glob(f"{work}/data/outbox/*.ndjson.zst")
outbox_bytes = sum(os.path.getsize(f) for f in files)
def mib(n): return f"{n/1048576:.2f} MiB" if n >= 1048576 else f"{n/1024:.1f} KiB"
dups = len(seqs) - len(set(seqs))
mqtt = sources.get("lorawan", 0) + sources.get("airquality", 0)
reasons = {}
for line in open(f"{work}/dlq.txt"):
    parts = line.split(None, 3)
    if len(parts) == 4 and line[:1].isdigit():
        reasons[parts[3].strip()] = reasons.get(parts[3].strip(), 0) + 1
print()
print("edgeferry demo summary")
print(f"  published    {published} MQTT messages ({mib(pub_bytes)}) + a serial GPS log (u-blox 8, 115200 baud)")
print(f"  stored       {st['appended_total']} records in the buffer ({', '.join(f'{k}: {v}' for k, v in sorted(sources.items()))})")
print(f"  dead letters {st['dead_letters']}" + "".join(f"\n                 {n} x {r}" for r, n in sorted(reasons.items())))
print(f"  delivered    {len(set(seqs))} records to the outbox in {len(files)} files, {dups} duplicates")
# The cloud's route: the air-quality records, each reduced to five fields, and the GPS
# RMC sentences as position fixes. Checked here against the outbox's full copy of the
# same record; the fixes decoded by hand from the NMEA text (ddmm.mmmm, hemisphere).
cloud_lines = open(f"{work}/cloud-received.ndjson", "rb").read().splitlines()
cloud = [json.loads(l) for l in cloud_lines]
keep = ["Date", "Time", "CO_GT", "T", "RH"]
full = {}
for line in open(f"{work}/delivered.ndjson", "rb"):
    r = json.loads(line)
    full[r["seq"]] = (r, len(line))
def rmc_fix(sentence):
    f = sentence.split("*")[0].split(",")
    deg = lambda v, n, h: (int(v[:n]) + float(v[n:]) / 60) * (-1 if h in "SW" else 1)
    d, t = f[9], f[1]
    frac = (t.split(".") + ["0"])[1]
    return {"time": f"20{d[4:6]}-{d[2:4]}-{d[0:2]}T{t[0:2]}:{t[2:4]}:{t[4:6]}.{frac.ljust(9, '0')}Z",
            "lat": deg(f[3], 2, f[4]), "lon": deg(f[5], 3, f[6]), "speed_knots": float(f[7]) if f[7] else None}
def close(a, b):
    return all(abs(a[k] - b[k]) < 1e-9 if isinstance(a[k], float) else a[k] == b[k] for k in a) and a.keys() == b.keys()
aq_seqs = sorted(s for s, (r, _) in full.items() if r["source"] == "airquality")
rmc_seqs = sorted(s for s, (r, _) in full.items() if r["source"] == "gps" and r["channel"] in ("GNRMC", "GPRMC"))
cloud_aq = [r for r in cloud if r["source"] == "airquality"]
cloud_gps = [r for r in cloud if r["source"] == "gps"]
cloud_ok = sorted(r["seq"] for r in cloud_aq) == aq_seqs and all(
    r["payload"] == {k: full[r["seq"]][0]["payload"][k] for k in keep if k in full[r["seq"]][0]["payload"]}
    for r in cloud_aq)
gps_ok = sorted(r["seq"] for r in cloud_gps) == rmc_seqs and len(rmc_seqs) > 0 and all(
    close(r["payload"], rmc_fix(full[r["seq"]][0]["payload"])) and r.get("event_ts") == rmc_fix(full[r["seq"]][0]["payload"])["time"]
    for r in cloud_gps)
ts_sources = {}
for r, _ in full.values():
    ts_sources[r.get("ts_source", "?")] = ts_sources.get(r.get("ts_source", "?"), 0) + 1
uplink = sum(len(l) + 1 for l in cloud_lines)
everything = sum(n for _, n in full.values())  # every record, whole, as the outbox has it
print(f"  routes       outbox: every record ({len(set(seqs))}); cloud: air quality, 5 of 15 fields "
      f"({len(cloud_aq)} records, " + ("each the outbox's record reduced" if cloud_ok else "NOT the outbox's records reduced")
      + f"), GPS RMC as JSON fixes ({len(cloud_gps)}, " + ("each matching its sentence" if gps_ok else "MISMATCHED") + ")")
print(f"  time         receive time from the clock as {', '.join(f'{k}: {v}' for k, v in sorted(ts_sources.items()))}"
      + (" (the kernel says the clock is not synchronized: records carry the boot id, re-based once it is)"
         if "unsynced" in ts_sources else "") + "; GPS fixes carry the receiver's own time as event_ts")
print(f"  uplink       {mib(uplink)} to the cloud broker instead of {mib(everything)} for every record whole "
      f"({100 * (1 - uplink / everything):.0f}% saved on the metered link)")
print(f"  compression  buffer segments {mib(st['written_payload_bytes'])} -> {mib(st['written_compressed_bytes'])} "
      f"({st['compression_ratio']:.1f}x); outbox files {mib(outbox_bytes)}")
print(f"  on disk      buffer {mib(st['file_bytes'])} (database + WAL), backlog {sum(c['backlog_records'] for c in st['cursors'])} records")
print(f"  elapsed      {end - start:.2f} s from first publish to last delivery")
print(f"  files        {work} (config, logs, outbox; `edgeferry dlq list --config {work}/edgeferry.toml`)")
ok = (mqtt == published and dups == 0 and len(set(seqs)) == st['appended_total'] and sources.get("gps", 0) > 0
      and cloud_ok and gps_ok)
print("  result       " + ("OK: every MQTT message and valid NMEA sentence delivered exactly once to the outbox, "
                          "every air-quality row reduced and every GPS fix decoded to the cloud"
                         if ok else "MISMATCH"))
sys.exit(0 if ok else 1)
PY
