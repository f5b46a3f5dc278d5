#!/usr/bin/env bash
# Builds and runs every test: unit, real-broker integration, kill/restart.
#   scripts/test.sh           the dev preset (Debug)
#   scripts/test.sh asan      the ASan + UBSan preset
# Under CI=true a test whose server or tool is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET=${1:-dev}
cmake --preset "$PRESET" >/dev/null
cmake --build --preset "$PRESET" -j"$(nproc)"
# Tests start their own brokers on free ports, so they may run in parallel.
ctest --preset "$PRESET" -j"$(nproc)"
