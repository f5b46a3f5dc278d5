#!/usr/bin/env bash
# Serial source throughput: one real NMEA capture (B&G Zeus 9, 4,999 sentences)
# repeated N times, written at full speed into a pseudo-terminal that edgeferry reads as
# a serial device (framing, checksum, buffer, delivery to the outbox). Prints figures.
#   bench/serial.sh [repeats=40]
set -euo pipefail
source "$(dirname "$0")/common.sh"
REPEATS=${1:-40}
LOG=tests/data/nmea/bundg_zeus_9.log
grep -v '^#' "$LOG" > "$WORK/one.log"
for _ in $(seq "$REPEATS"); do cat "$WORK/one.log"; done > "$WORK/stream.log"
SENTENCES=$(( $(grep -c '^\$' "$WORK/one.log") * REPEATS ))
BYTES=$(stat -c %s "$WORK/stream.log")
cat > "$WORK/edgeferry.toml" <<TOML
[gateway]
id = "bench"
data_dir = "$WORK/data"
[log]
stats_interval = "0"
[sources.boat]
type = "serial"
device = "$WORK/nmea0"
baud = 115200
[sinks.outbox]
type = "outbox"
max_records = 10000
linger = "1s"
TOML
"$REPLAY" --serial "$WORK/nmea0" --hold "$WORK/stream.log" > "$WORK/replay.txt" 2>/dev/null &
sleep 0.2
"$EF" run --config "$WORK/edgeferry.toml" 2> "$WORK/edgeferry.log" &
AGENT=$!
for _ in $(seq 100); do grep -q "opened" "$WORK/edgeferry.log" && break; sleep 0.05; done
read -r U0 S0 < <(awk '{print $14, $15}' "/proc/$AGENT/stat")
T0=$(date +%s.%N)
echo "writing $SENTENCES sentences ($BYTES bytes) into the pty at full speed..."
while true; do
  STORED=$(appended "$WORK/edgeferry.toml")
  printf '\r  stored %s / %s' "$STORED" "$SENTENCES"
  [ "$STORED" -ge "$SENTENCES" ] && break
  sleep 0.1
done
T1=$(date +%s.%N)
echo
read -r U1 S1 < <(awk '{print $14, $15}' "/proc/$AGENT/stat")
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$AGENT/status")
kill -TERM "$AGENT"; wait "$AGENT"
python3 - "$SENTENCES" "$BYTES" "$T0" "$T1" "$U0" "$S0" "$U1" "$S1" "$(getconf CLK_TCK)" "$HWM" <<'PY'
import sys
n, b, t0, t1 = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
cpu = (int(sys.argv[7]) + int(sys.argv[8]) - int(sys.argv[5]) - int(sys.argv[6])) / int(sys.argv[9])
secs = t1 - t0
print(f"\nedgeferry serial benchmark (one source, pty at full speed, real NMEA, {b/n:.0f} B per sentence)")
print(f"  sentences stored   {n/secs:10.0f} /s  ({b/secs/1e6:.1f} MB/s; 115200 baud is 11,520 B/s)")
print(f"  agent CPU          {1e6*cpu/n:10.2f} us/sentence (framing, checksum, store, deliver to outbox)")
print(f"  peak RSS           {int(sys.argv[10])/1024:10.1f} MiB")
PY
