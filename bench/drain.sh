#!/usr/bin/env bash
# Backlog drain per sink: a buffer prefilled with N real sensor records (UCI air
# quality rows as JSON, ~230 B) is drained by one sink at a time to a local server:
# outbox (files), mqtt (mosquitto, QoS 1), http (tests/servers/http_server.py, gzip),
# kinesis (kinesalite), s3 (s3rver). Prints records/s with the batch settings used.
# The local servers are part of what is measured (kinesalite, s3rver and the Python
# HTTP server are slower than the real services).
#   bench/drain.sh [records=100000] [sinks="outbox mqtt http kinesis s3"] (also: http-zstd)
set -euo pipefail
source "$(dirname "$0")/common.sh"
N=${1:-100000}
SINKS=${2:-outbox mqtt http kinesis s3}
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
LINES=()

# 1. Prefill: an agent with a source and no sink buffers everything.
PORT=$(free_port)
start_broker "$PORT" "$WORK/mosquitto.conf"
base_config() {
  printf '[gateway]\nid = "bench"\ndata_dir = "%s"\n[log]\nstats_interval = "0"\n' "$1"
}
{ base_config "$WORK/prefill"; printf '[sources.air]\ntype = "mqtt"\nuri = "tcp://127.0.0.1:%s"\ntopics = ["bench/#"]\n' "$PORT"; } \
  > "$WORK/prefill.toml"
"$EF" run --config "$WORK/prefill.toml" 2> "$WORK/prefill.log" &
AGENT=$!
for _ in $(seq 100); do grep -q "connected to" "$WORK/prefill.log" && break; sleep 0.05; done
FILES=(); for _ in $(seq $(( (N + 1999) / 2000 ))); do FILES+=(examples/data/uci-airquality-2000.csv); done
N=$(( ${#FILES[@]} * 2000 ))
echo "prefilling the buffer with $N records..."
"$REPLAY" -q --qos 1 --broker "tcp://127.0.0.1:$PORT" --topic bench/air "${FILES[@]}" > /dev/null
until [ "$(appended "$WORK/prefill.toml")" -ge "$N" ]; do sleep 0.2; done
kill -TERM "$AGENT"; wait "$AGENT"

# 2. Drain with each sink.
declare -A RESULT SETTINGS
for SINK in $SINKS; do
  D="$WORK/$SINK"; mkdir -p "$D"; cp "$WORK"/prefill/buffer.db* "$D/"
  SPORT=$(free_port)
  case $SINK in
    outbox) SET='max_records = 10000, linger = "1s"'
            BODY=$'type = "outbox"\nmax_records = 10000\nlinger = "1s"' ;;
    mqtt)   start_broker "$SPORT" "$D/cloud.conf"
            SET='QoS 1, max_inflight = 1000, max_records = 5000, linger = 0'
            printf -v BODY 'type = "mqtt"\nuri = "tcp://127.0.0.1:%s"\nqos = 1\nmax_inflight = 1000\nmax_records = 5000\nlinger = "0"' "$SPORT" ;;
    http)   python3 tests/servers/http_server.py "$SPORT" "$D" & wait_port "$SPORT"
            SET='gzip, max_records = 5000, max_bytes = 4MiB, linger = "1s"'
            printf -v BODY 'type = "http"\nurl = "http://127.0.0.1:%s/ingest"\nmax_records = 5000\nmax_bytes = "4MiB"' "$SPORT" ;;
    http-zstd) python3 tests/servers/http_server.py "$SPORT" "$D" & wait_port "$SPORT"
            SET='zstd (Content-Encoding: zstd), max_records = 5000, max_bytes = 4MiB, linger = "1s"'
            printf -v BODY 'type = "http"\nurl = "http://127.0.0.1:%s/ingest"\ncompression = "zstd"\nmax_records = 5000\nmax_bytes = "4MiB"' "$SPORT" ;;
    kinesis) node tests/servers/kinesalite-server.js "$SPORT" bench > "$D/k.log" 2>&1 &
            for _ in $(seq 100); do grep -q listening "$D/k.log" && break; sleep 0.1; done
            SET='500 records per PutRecords (the API limit), linger = "1s"'
            printf -v BODY 'type = "kinesis"\nstream = "bench"\nendpoint = "http://127.0.0.1:%s"\nmax_records = 500' "$SPORT" ;;
    s3)     node tests/servers/node_modules/s3rver/bin/s3rver.js -d "$D/s3" -a 127.0.0.1 -p "$SPORT" \
              --configure-bucket bench --silent > /dev/null 2>&1 & wait_port "$SPORT"
            SET='zstd, max_records = 50000 per object, linger = "1s"'
            printf -v BODY 'type = "s3"\nbucket = "bench"\nendpoint = "http://127.0.0.1:%s"\npath_style = true\nmax_records = 50000\nlinger = "1s"' "$SPORT" ;;
  esac
  { base_config "$D"; printf '[sinks.%s]\n%s\n' "$SINK" "$BODY"; } > "$D/edgeferry.toml"
  T0=$(date +%s.%N)
  "$EF" run --config "$D/edgeferry.toml" 2> "$D/edgeferry.log" &
  AGENT=$!
  while true; do
    LEFT=$("$EF" buffer stats --json --config "$D/edgeferry.toml" 2>/dev/null | python3 -c 'import json,sys; c=json.load(sys.stdin)["cursors"]; print(c[0]["backlog_records"] if c else -1)' 2>/dev/null || echo "?")
    kill -0 "$AGENT" 2>/dev/null || { echo "edgeferry exited; log: $D/edgeferry.log"; exit 1; }
    printf '\r  %-8s backlog %-8s' "$SINK" "$LEFT"
    [ "$LEFT" = 0 ] && break
    sleep 0.1
  done
  T1=$(date +%s.%N)
  CPU=$(awk '{print $14 + $15}' "/proc/$AGENT/stat")
  kill -TERM "$AGENT"; wait "$AGENT" || true
  RESULT[$SINK]=$(python3 -c "print(f'{$N/($T1-$T0):,.0f}')")
  LINES+=("$(python3 -c "print(f'RESULT sink=$SINK n=$N rate={$N/($T1-$T0):.0f} cpu_us={1e6*$CPU/$(getconf CLK_TCK)/$N:.2f}')")")
  SETTINGS[$SINK]=$SET
done
echo
echo
echo "edgeferry backlog drain ($N records, ~230 B JSON each, this machine, local servers)"
for SINK in $SINKS; do printf '  %-8s %10s records/s   %s\n' "$SINK" "${RESULT[$SINK]}" "${SETTINGS[$SINK]}"; done
printf '%s\n' "${LINES[@]}"
