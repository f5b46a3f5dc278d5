#!/usr/bin/env bash
# Checks a built edgeferry .deb without installing it: lintian must report no error and
# no warning (overrides, each with its reason, are in packaging/debian/lintian-overrides
# and ship in the package), and the binaries must carry the hardening lintian checks
# (PIE, full RELRO, BIND_NOW, stack protector, fortified functions).
#   scripts/check-deb.sh build/packages/edgeferry_0.1.0-1_amd64.deb
set -euo pipefail
DEB=${1:?usage: scripts/check-deb.sh PACKAGE.deb}
fail() { echo "check-deb: FAIL: $*" >&2; exit 1; }
if ! command -v lintian >/dev/null; then
  # CI must not pass a package nobody checked.
  [ "${CI:-}" != true ] || fail "lintian is not installed (scripts/install-deps.sh)"
  echo "check-deb: lintian not installed; skipped" >&2
  exit 0
fi

# Info tags are shown for the record; only errors and warnings fail.
rc=0
out=$(lintian --display-info --fail-on error,warning "$DEB" 2>&1) || rc=$?
[ -z "$out" ] || printf '%s\n' "$out"
[ $rc -eq 0 ] || fail "lintian reports errors or warnings on $(basename "$DEB") (exit $rc)"
! grep -qE '^[EW]: ' <<<"$out" || fail "lintian: errors or warnings above"
echo "check-deb: lintian: no errors or warnings ($(grep -c '^[IP]: ' <<<"$out" || true) info tags)"

# lintian checks the same, but say what was found, for the record.
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
dpkg-deb -x "$DEB" "$dir"
for bin in "$dir"/usr/bin/*; do
  name=$(basename "$bin")
  hdr=$(readelf -h -d -l -W "$bin")
  syms=$(readelf --dyn-syms -W "$bin")
  grep -q 'Type:.*DYN' <<<"$hdr" || fail "$name is not position independent (PIE)"
  grep -q 'GNU_RELRO' <<<"$hdr" || fail "$name has no RELRO segment"
  grep -qE 'BIND_NOW|FLAGS.*NOW' <<<"$hdr" || fail "$name is not linked with -z now"
  grep -q '__stack_chk_fail' <<<"$syms" || fail "$name has no stack protector"
  grep -qE '__[a-z_]+_chk(@|$| )' <<<"$syms" || fail "$name calls no fortified (_chk) functions"
  echo "check-deb: $name: PIE, RELRO, BIND_NOW, stack protector, $(grep -oE '__[a-z_]+_chk\b' <<<"$syms" | sort -u | wc -l) fortified functions"
done
echo "check-deb: $(basename "$DEB") ($(($(stat -c %s "$DEB") / 1024)) KiB): passed"
