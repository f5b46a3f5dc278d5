#!/usr/bin/env bash
# Installs every Debian package edgeferry's build, tests and demo need on a fresh
# Debian 12 (bookworm) machine or Raspberry Pi OS. Idempotent; run as root or via sudo.
#   scripts/install-deps.sh          build + test + demo dependencies (native)
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PKGS=(
  # toolchain
  build-essential cmake ninja-build pkgconf git ca-certificates ccache
  # required libraries (the versions Debian 12 / Raspberry Pi OS ship)
  libpaho-mqttpp-dev libpaho-mqtt-dev libssl-dev   # Paho C++'s CMake config needs Paho C and OpenSSL
  libsqlite3-dev libzstd-dev libcurl4-openssl-dev libboost-dev zlib1g-dev
  # well-kept helpers instead of our own code: TOML config, JSON, CLI, logging
  libtomlplusplus-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libsystemd-dev
  libre2-dev   # the parse processor's regex: RE2 matches in linear time
  # clang 14 with its sanitizer and libFuzzer runtimes: the clang (-Wthread-safety)
  # and fuzz presets (scripts/fuzz.sh)
  clang libclang-rt-14-dev
  # tests and benchmarks: real brokers and servers, and botocore (in awscli) to check SigV4
  libgtest-dev libgmock-dev libbenchmark-dev mosquitto mosquitto-clients
  sqlite3 zstd python3 openssl awscli nodejs
  # the package: man pages from --help, its lint, and bash-completion for the test of
  # the completion script (scripts/test-package.sh)
  help2man lintian bash-completion
  # promtool checks the /metrics exposition (tests/integration/systemd_test.cc)
  prometheus
)

export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} Debian packages present"
else
  echo "install-deps: installing ${missing[*]}"
  # A stale or unreachable mirror index must not hide which step failed.
  $SUDO apt-get update -q || echo "install-deps: warning: apt-get update failed; trying with the cached index" >&2
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian's nodejs ships without npm on some images; add it only where missing.
command -v npm >/dev/null || $SUDO apt-get install -y -q --no-install-recommends npm

# Cloud API servers for the sink tests (kinesalite, s3rver), pinned by the lockfile.
cd "$(dirname "$0")/../tests/servers"
if [ ! -d node_modules/kinesalite ] || [ ! -d node_modules/s3rver ] || [ package-lock.json -nt node_modules ]; then
  echo "install-deps: npm ci (tests/servers)"
  npm ci --no-audit --no-fund --loglevel=error
fi
# The mosquitto package enables a system broker on :1883; edgeferry's tests and demo start
# their own private brokers on free loopback ports and never rely on it.
echo "install-deps: done"
