#!/usr/bin/env bash
# End-to-end ingest benchmark: a load generator publishes N real sensor rows (UCI air
# quality, ~230 bytes of JSON each) to a private mosquitto; edgeferry (release build)
# stores them durably and delivers them to its outbox. A plain mosquitto_sub on the same
# broker in the same run is the physical limit. Prints figures; it is not a pass/fail test.
#   bench/ingest.sh [messages=200000] [qos=1] [online|offline]
# online: records are delivered to the outbox as they arrive (ingest + store + deliver).
# offline: no sink, everything stays in the buffer (ingest + store; the drain is
# measured by drain.sh); its disk figures are the buffer's alone.
# The last line is "RESULT key=value ..." for bench/run.sh.
set -euo pipefail
source "$(dirname "$0")/common.sh"
N=${1:-200000}
QOS=${2:-1}
MODE=${3:-online}
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
TOML
[ "$MODE" = online ] && printf '[sinks.outbox]\ntype = "outbox"\nmax_records = 10000\nlinger = "1s"\n' >> "$WORK/edgeferry.toml"
${EDGEFERRY_WRAP:-} "$EF" run --config "$WORK/edgeferry.toml" 2> "$WORK/edgeferry.log" &
AGENT=$!
for _ in $(seq 50); do grep -q "connected to" "$WORK/edgeferry.log" && break; sleep 0.1; done
# The physical limit: a plain Paho subscriber (the library edgeferry's source uses).
"$BUILD/bench/edgeferry_paho_sub" --uri "tcp://127.0.0.1:$PORT" --topic 'bench/#' --qos "$QOS" --count "$N" > "$WORK/sub.txt" &
SUB=$!
for _ in $(seq 100); do grep -q ready "$WORK/sub.txt" 2>/dev/null && break; sleep 0.05; done
read -r U0 S0 < <(awk '{print $14, $15}' "/proc/$AGENT/stat")
T0=$(date +%s.%N)
"$REPLAY" -q --qos "$QOS" --broker "tcp://127.0.0.1:$PORT" --topic bench/air "${FILES[@]}" > "$WORK/replay.txt" &
PUBLISHER=$!
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
# The publisher prints its summary after its last acknowledgement: wait for it.
wait "$PUBLISHER"
read -r U1 S1 < <(awk '{print $14, $15}' "/proc/$AGENT/stat")
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$AGENT/status")
WRITE=$(awk '/^write_bytes/ {print $2}' "/proc/$AGENT/io")
kill -TERM "$AGENT"; wait "$AGENT"
"$EF" buffer stats --json --config "$WORK/edgeferry.toml" > "$WORK/stats.json"
python3 - "$N" "$T0" "$AGENT_DONE" "$SUB_DONE" "$U0" "$S0" "$U1" "$S1" "$HWM" "$WRITE" "$WORK" "$(getconf CLK_TCK)" "$QOS" "$MODE" <<'PY'
import json, sys
n, t0, ta, ts = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
u0, s0, u1, s1, hwm, wr, work, tck, qos, mode = map(str, sys.argv[5:15])
cpu = (int(u1) + int(s1) - int(u0) - int(s0)) / int(tck)
st = json.load(open(f"{work}/stats.json"))
pub = open(f"{work}/replay.txt").read().split()
raw = int(pub[3])
sub_n, sub_s = open(f"{work}/sub.txt").read().split()[-2:]
sub_rate = int(sub_n) / max(float(sub_s), 1e-9)
rate = n / (ta - t0)
what = "ingest + store + deliver to outbox" if mode == "online" else "ingest + store, no sink"
print(f"\nedgeferry ingest benchmark ({mode}, QoS {qos}, {n} messages, {raw/n:.0f} B avg payload)")
print(f"  plain Paho subscriber             {sub_rate:10.0f} msg/s ({sub_n} received)")
print(f"  edgeferry, durable buffering      {rate:10.0f} msg/s  ({100*rate/sub_rate:.0f}% of the plain subscriber)")
print(f"  agent CPU                         {1e6*cpu/n:10.2f} us/record ({what})")
print(f"  peak RSS                          {int(hwm)/1024:10.1f} MiB")
print(f"  bytes written to disk             {int(wr)/n:10.1f} B/record ({int(wr)/raw:.3f} x raw payload{'; includes outbox files' if mode == 'online' else ''})")
print(f"  buffer on disk                    {st['file_bytes']/n:10.1f} B/record ({st['file_bytes']/raw:.3f} x raw; {st['records']} records held)")
print(f"RESULT mode={mode} qos={qos} n={n} raw_b={raw/n:.1f} sub_rate={sub_rate:.0f} rate={rate:.0f} pct={100*rate/sub_rate:.1f} "
      f"cpu_us={1e6*cpu/n:.2f} rss_mib={int(hwm)/1024:.1f} write_b={int(wr)/n:.1f} write_x={int(wr)/raw:.3f} "
      f"store_x={st['file_bytes']/raw:.3f} held={st['records']}")
PY
