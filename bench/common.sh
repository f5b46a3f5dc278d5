# Shared by the bench scripts (sourced): the release build, a work dir cleaned of child
# processes on exit, free loopback ports, and private mosquitto brokers.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${EDGEFERRY_BUILD_DIR:-build/release}
if [ ! -x "$BUILD/agent/edgeferry" ] || [ ! -x "$BUILD/tools/replay/edgeferry-replay" ]; then
  cmake --preset release >/dev/null
  cmake --build --preset release | tail -1
fi
EF=$BUILD/agent/edgeferry
REPLAY=$BUILD/tools/replay/edgeferry-replay
WORK=$(mktemp -d "/tmp/edgeferry-$(basename "$0" .sh).XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# start_broker PORT CONF: a private mosquitto on 127.0.0.1:PORT with unlimited queues.
start_broker() {
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n%s\n' "$1" \
    "$([ "$(id -u)" = 0 ] && echo 'user root')" > "$2"
  mosquitto -c "$2" > /dev/null 2>&1 &
  wait_port "$1"
}

# appended CONFIG: records the buffer of that agent has taken in (committed state).
appended() {
  "$EF" buffer stats --json --config "$1" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["appended_total"])' 2>/dev/null || echo 0
}
