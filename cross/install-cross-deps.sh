#!/usr/bin/env bash
# Installs the cross compilers, qemu-user and the target-architecture libraries that a
# Debian 12 amd64 host needs to build (and test under qemu) edgeferry for Raspberry Pi
# OS / Debian gateways. Uses Debian multiarch: no sysroot to download or keep in sync.
#   cross/install-cross-deps.sh arm64 [armhf]
# Exit status: 0 when every named architecture is ready; 3 when one could not be set
# up (the log names it and the packages apt refused); other codes for usage errors.
set -uo pipefail

if [ $# -eq 0 ]; then echo "usage: $0 arm64|armhf [...]" >&2; exit 64; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

# Libraries edgeferry links or its tests need, per target architecture. Header-only
# packages that are Architecture: all (CLI11, nlohmann-json) come from the host.
TARGET_LIBS=(
  libpaho-mqttpp-dev libpaho-mqtt-dev libssl-dev libsqlite3-dev libzstd-dev
  libcurl4-openssl-dev libboost-dev zlib1g-dev libtomlplusplus-dev libspdlog-dev
  libfmt-dev libsystemd-dev libre2-dev libgtest-dev libgmock-dev
)
HOST_TOOLS=(qemu-user-static binfmt-support dpkg-dev file)

declare -A TRIPLET=([arm64]=aarch64-linux-gnu [armhf]=arm-linux-gnueabihf)
for arch in "$@"; do
  [ -n "${TRIPLET[$arch]:-}" ] || { echo "cross: unknown architecture '$arch' (arm64, armhf)" >&2; exit 64; }
done

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
HOST_ARCH=$(dpkg --print-architecture)

# Multiarch needs a library at one version on every architecture. A mirror whose
# foreign index lags the host's (security updates reach amd64 first) makes apt refuse
# the install. Prints apt version pins that bring each Multi-Arch: same pair to one
# version: the host moves to the target's candidate when it can get it, else the target
# is pinned to the host's version. Pairs that cannot be aligned are named on stderr.
align_versions() {
  local arch=$1; shift
  local foreign
  foreign=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances "$@" 2>/dev/null | grep -E "^[a-z0-9][^ ]*:$arch\$" | sort -u)
  [ -n "$foreign" ] || return 0
  # One apt-cache call per question (each costs ~1 s on a small machine).
  # shellcheck disable=SC2086
  {
    dpkg-query -W -f='host ${Package} ${Version} ${Multi-Arch}\n' ${foreign//:$arch/:$HOST_ARCH} 2>/dev/null
    apt-cache policy $foreign 2>/dev/null | awk '/^[^ ]/ {p=$1; sub(/:$/,"",p); sub(/:[a-z0-9]+$/,"",p)}
                                                 /Candidate:/ {print "cand", p, $2}'
    apt-cache madison ${foreign//:$arch/} $foreign 2>/dev/null |
      awk -F'|' '{gsub(/ /,"",$1); gsub(/ /,"",$2); n=split($3,a," "); sub(/:[a-z0-9]+$/,"",$1); print "avail", $1, $2, a[n-1]}'
  } | awk -v arch="$arch" -v host="$HOST_ARCH" '
    $1=="host"  && $4=="same" {hv[$2]=$3}   # only Multi-Arch: same must match
    $1=="cand"  && $3!="(none)" {cv[$2]=$3}
    $1=="avail" {av[$2" "$3" "$4]=1}
    END {
      for (p in hv) {
        if (!(p in cv)) continue
        # Equal already: name the target version anyway, or the apt resolver may plan a
        # host upgrade (the host sees newer updates) that the target cannot follow.
        if (cv[p]==hv[p]) { print p":"arch"="hv[p]; continue }
        if ((p" "cv[p]" "host) in av) print p":"host"="cv[p]   # host moves to what the target sees
        else if ((p" "hv[p]" "arch) in av) print p":"arch"="hv[p]
        else print "cross: cannot align "p": "host" has "hv[p]", "arch" only "cv[p] > "/dev/stderr"
      }
    }'
}

for arch in "$@"; do
  dpkg --print-foreign-architectures | grep -qx "$arch" || $SUDO dpkg --add-architecture "$arch"
done
want=("${HOST_TOOLS[@]}")
for arch in "$@"; do
  want+=("crossbuild-essential-$arch" "pkgconf:$arch")
  for p in "${TARGET_LIBS[@]}"; do want+=("$p:$arch"); done
done
missing=()
for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "cross: everything present for: $*"
  exit 0
fi
# A stale index for one architecture must not hide which one failed: report, go on.
$SUDO apt-get update -q || echo "cross: warning: apt-get update reported errors (see above)" >&2

failed=()
for arch in "$@"; do
  pkgs=("crossbuild-essential-$arch" "pkgconf:$arch")
  for p in "${TARGET_LIBS[@]}"; do pkgs+=("$p:$arch"); done
  # shellcheck disable=SC2207
  # The closure of the libraries (and libc6-dev), not of crossbuild-essential, whose
  # Perl tooling is Multi-Arch: foreign and comes from the host.
  pins=($(align_versions "$arch" "libc6-dev:$arch" "${pkgs[@]:2}"))
  [ ${#pins[@]} -eq 0 ] || echo "cross: $arch index differs from $HOST_ARCH; aligning: ${pins[*]}"
  echo "cross: installing for $arch: ${pkgs[*]}"
  if ! $SUDO apt-get install -y -q --no-install-recommends --allow-downgrades "${HOST_TOOLS[@]}" "${pkgs[@]}" "${pins[@]}"; then
    echo "cross: ERROR: could not install the $arch toolchain and libraries." >&2
    echo "cross: the usual cause is a package mirror whose $arch index is older than amd64's" >&2
    echo "cross: (multiarch needs identical versions on every architecture)." >&2
    failed+=("$arch")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "cross: NOT READY: ${failed[*]}" >&2
  exit 3
fi
echo "cross: ready: $*"
