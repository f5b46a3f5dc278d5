#!/usr/bin/env bash
# End-to-end ingest benchmark: a load generator publishes N real sensor rows (UCI air
# quality, ~230 bytes of JSON each) to a private mosquitto; edgeferry (release build)
# stores them durably and delivers them to its outbox. A plain mosquitto_sub on the same
# broker in the same run is the physical limit. Prints figures; it is not a pass/fail test.
#   bench/ingest.sh [messages=200000] [qos=1]
set -euo pipefail
source "$(dirname "$0")/common.sh"
N=${1:-200000}
QOS=${2:-1}
SAMPLE=examples/data/uci-airquality-2000.csv
COPIES=$(( (N + 1999) / 2000 ))
FILES=(); for _ in $(seq "$COPIES"); do FILES+=("$SAMPLE"); done
N=$((COPIES * 2000))

PORT=$(free_port)
start_broker "$PORT" "$WORK/mosquitto.conf"
cat > "$WORK/edgeferry.toml" <<TOML
[gateway]
id = "bench"
data_dir = "$WORK/data"
[log]
stats_interval = "0"
[sources.air]
type = "mqtt"
uri = "tcp://127.0.0.1:$PORT"
topics = ["bench/#"]
qos = $QOS
[sinks.outbox]
type = "outbox"
max_records = 10000
linger = "1s"
TOML
${EDGEFERRY_WRAP:-} "$EF" run --config "$WORK/edgeferry.toml" 2> "$WORK/edgeferry.log" &
AGENT=$!
for _ in $(seq 50); do grep -q "connected to" "$WORK/edgeferry.log" && break; sleep 0.1; done
mosquitto_sub -p "$PORT" -t 'bench/#' -q "$QOS" -C "$N" > /dev/null &
SUB=$!
sleep 0.3
read -r U0 S0 < <(awk '{print $14, $15}' "/proc/$AGENT/stat")
T0=$(date +%s.%N)
"$REPLAY" -q --qos "$QOS" --broker "tcp://127.0.0.1:$PORT" --topic bench/air "${FILES[@]}" > "$WORK/replay.txt" &
echo "publishing $N messages (QoS $QOS)..."
SUB_DONE=""; AGENT_DONE=""
while [ -z "$AGENT_DONE" ] || [ -z "$SUB_DONE" ]; do
  NOW=$(date +%s.%N)
  if [ -z "$SUB_DONE" ] && ! kill -0 "$SUB" 2>/dev/null; then SUB_DONE=$NOW; fi
  if [ -z "$AGENT_DONE" ]; then
    STORED=$(appended "$WORK/edgeferry.toml")
    printf '\r  edgeferry stored %s / %s' "$STORED" "$N"
    [ "$STORED" -ge "$N" ] && AGENT_DONE=$NOW
  fi
  python3 -c "import sys; sys.exit(0 if $NOW - $T0 < 300 else 1)" || { echo " timeout"; break; }
  sleep 0.05
done
echo
read -r U1 S1 < <(awk '{print $14, $15}' "/proc/$AGENT/stat")
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$AGENT/status")
WRITE=$(awk '/^write_bytes/ {print $2}' "/proc/$AGENT/io")
kill -TERM "$AGENT"; wait "$AGENT"
"$EF" buffer stats --json --config "$WORK/edgeferry.toml" > "$WORK/stats.json"
python3 - "$N" "$T0" "$AGENT_DONE" "$SUB_DONE" "$U0" "$S0" "$U1" "$S1" "$HWM" "$WRITE" "$WORK" "$(getconf CLK_TCK)" "$QOS" <<'PY'
import json, sys
n, t0, ta, ts = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
u0, s0, u1, s1, hwm, wr, work, tck, qos = map(str, sys.argv[5:14])
cpu = (int(u1) + int(s1) - int(u0) - int(s0)) / int(tck)
st = json.load(open(f"{work}/stats.json"))
pub = open(f"{work}/replay.txt").read().split()
raw = int(pub[3])
print(f"\nedgeferry ingest benchmark (QoS {qos}, {n} messages, {raw/n:.0f} B avg payload)")
print(f"  plain subscriber (mosquitto_sub)  {n/(ts-t0):10.0f} msg/s")
print(f"  edgeferry, durable buffering      {n/(ta-t0):10.0f} msg/s  ({100*(ts-t0)/(ta-t0):.0f}% of the plain subscriber)")
print(f"  agent CPU                         {1e6*cpu/n:10.2f} us/record (ingest + store + deliver to outbox)")
print(f"  peak RSS                          {int(hwm)/1024:10.1f} MiB")
print(f"  bytes written to disk             {int(wr)/n:10.1f} B/record ({int(wr)/raw:.3f} x raw payload; includes outbox files)")
print(f"  buffer: {st['written_records']} records written, ratio {st['compression_ratio']:.1f}x")
PY
