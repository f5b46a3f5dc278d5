#!/usr/bin/env bash
# Streaming latency: MQTT in (local mosquitto) -> edgeferry (durable buffer, linger 0)
# -> MQTT uplink (a second mosquitto standing in for the cloud broker). A probe publishes
# timestamped ~150-byte JSON at a steady rate and times each message's arrival upstream.
#   bench/latency.sh [messages=10000] [rate=1000]
# The last line is "RESULT key=value ..." for bench/run.sh.
set -euo pipefail
source "$(dirname "$0")/common.sh"
N=${1:-10000}
RATE=${2:-1000}
LOCAL=$(free_port); CLOUD=$(free_port)
start_broker "$LOCAL" "$WORK/local.conf"
start_broker "$CLOUD" "$WORK/cloud.conf"
cat > "$WORK/edgeferry.toml" <<TOML
[gateway]
id = "bench"
data_dir = "$WORK/data"
[log]
stats_interval = "0"
[metrics]
enabled = false
[sources.probe]
type = "mqtt"
uri = "tcp://127.0.0.1:$LOCAL"
topics = ["probe/#"]
qos = 1
[sinks.cloud]
type = "mqtt"
uri = "tcp://127.0.0.1:$CLOUD"
qos = 1
linger = "0"
topic = "up/{source}"
TOML
"$EF" run --config "$WORK/edgeferry.toml" 2> "$WORK/edgeferry.log" &
for _ in $(seq 100); do grep -q "sink cloud: connected" "$WORK/edgeferry.log" && grep -q "source probe.*connected\|connected to tcp://127.0.0.1:$LOCAL" "$WORK/edgeferry.log" && break; sleep 0.1; done
echo "latency: $N messages at $RATE msg/s through edgeferry (QoS 1 in and out, linger 0)"
OUT=$("$BUILD/bench/edgeferry_latency_probe" --in "tcp://127.0.0.1:$LOCAL" --out "tcp://127.0.0.1:$CLOUD" \
  --out-filter 'up/#' --count "$N" --rate "$RATE")
echo "  $OUT"
echo "$OUT" | python3 -c '
import re, sys
s = sys.stdin.read()
m = re.search(r"received (\d+) of (\d+).*p50 ([\d.]+) ms, p90 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms", s)
print(f"RESULT received={m[1]} n={m[2]} p50_ms={m[3]} p90_ms={m[4]} p99_ms={m[5]} max_ms={m[6]}")'
