#!/usr/bin/env bash
# RSS while a large backlog builds and drains: N records (UCI air quality rows, QoS 0)
# arrive while the only sink's destination (an HTTP endpoint) is down; then it comes
# back and the backlog drains. Prints the agent's RSS against records buffered.
#   bench/backlog_rss.sh [records=1000000]
set -euo pipefail
source "$(dirname "$0")/common.sh"
N=${1:-1000000}
PORT=$(free_port); HTTP=$(free_port)
start_broker "$PORT" "$WORK/m.conf"
cat > "$WORK/edgeferry.toml" <<TOML
[gateway]
id = "bench"
data_dir = "$WORK/data"
[log]
stats_interval = "0"
[buffer]
max_bytes = "2GiB"
[sources.air]
type = "mqtt"
uri = "tcp://127.0.0.1:$PORT"
topics = ["air/#"]
qos = 0
[sinks.cloud]
type = "http"
url = "http://127.0.0.1:$HTTP/ingest"
max_records = 10000
max_bytes = "8MiB"
retry_base = "200ms"
retry_max = "1s"
TOML
"$EF" run --config "$WORK/edgeferry.toml" 2> "$WORK/edgeferry.log" &
AGENT=$!
for _ in $(seq 100); do grep -q "connected to" "$WORK/edgeferry.log" && break; sleep 0.05; done
FILES=(); for _ in $(seq $(( (N + 1999) / 2000 ))); do FILES+=(examples/data/uci-airquality-2000.csv); done
N=$(( ${#FILES[@]} * 2000 ))
"$REPLAY" -q --qos 0 --broker "tcp://127.0.0.1:$PORT" --topic air/row "${FILES[@]}" > /dev/null &
rss() { awk '/VmRSS/ {print $2}' "/proc/$AGENT/status"; }
backlog() { "$EF" buffer stats --json --config "$WORK/edgeferry.toml" 2>/dev/null | python3 -c 'import json,sys; c=json.load(sys.stdin)["cursors"]; print(c[0]["backlog_records"] if c else 0)' 2>/dev/null || echo 0; }
echo "phase 1: $N records arrive while the uplink is down"
echo "  backlog_records  rss_kib"
NEXT=0; BUILD_MIN=999999999; BUILD_MAX=0; BUILD_FIRST=0
while true; do
  B=$(backlog); R=$(rss)
  # After the first 10%: the steady state while the backlog grows.
  if [ "$B" -ge $((N / 10)) ]; then
    [ "$R" -lt "$BUILD_MIN" ] && BUILD_MIN=$R; [ "$R" -gt "$BUILD_MAX" ] && BUILD_MAX=$R
    [ "$BUILD_FIRST" = 0 ] && BUILD_FIRST=$R
    BUILD_LAST=$R
  fi
  if [ "$B" -ge "$NEXT" ]; then printf '  %15s  %7s\n' "$B" "$R"; NEXT=$((NEXT + N / 10)); fi
  [ "$B" -ge "$N" ] && break
  sleep 0.5
done
echo "phase 2: the uplink returns; the backlog drains"
mkdir -p "$WORK/http"
python3 tests/servers/http_server.py "$HTTP" "$WORK/http" &
T0=$(date +%s.%N); PEAK=0; NEXT=$N
while true; do
  B=$(backlog); R=$(rss); [ "$R" -gt "$PEAK" ] && PEAK=$R
  if [ "$B" -le "$NEXT" ]; then printf '  %15s  %7s\n' "$B" "$R"; NEXT=$((NEXT - N / 10)); fi
  [ "$B" -eq 0 ] && break
  sleep 0.5
done
T1=$(date +%s.%N)
echo
python3 -c "print(f'summary: {$N} records buffered and drained; drain {$N/($T1-$T0):,.0f} records/s to a Python HTTP server; RSS peak while draining {$PEAK/1024:.1f} MiB; store {int(open(\"/proc/$AGENT/status\").read().split(\"VmHWM:\")[1].split()[0])/1024:.1f} MiB high-water')"
du -sh "$WORK/data/buffer.db" | awk '{print "buffer file at the end: " $1}'
python3 -c "print(f'RESULT n={$N} build_rss_min_mib={$BUILD_MIN/1024:.1f} build_rss_max_mib={$BUILD_MAX/1024:.1f} build_rss_first_mib={$BUILD_FIRST/1024:.1f} build_rss_last_mib={$BUILD_LAST/1024:.1f} drain_rss_peak_mib={$PEAK/1024:.1f} drain_rate={$N/($T1-$T0):.0f}')"
