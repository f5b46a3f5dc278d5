#!/usr/bin/env bash
# Builds the native release and its .deb (build/packages/edgeferry_<version>_<arch>.deb).
# Cross packages: cross/build.sh arm64|armhf.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)"
cpack --config build/release/CPackConfig.cmake -B build/packages >/dev/null
ls -t build/packages/edgeferry_*_"$(dpkg --print-architecture)".deb | head -1
