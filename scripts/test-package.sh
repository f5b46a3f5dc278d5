#!/usr/bin/env bash
# Installs a built edgeferry .deb with dpkg on this machine and checks what an operator
# relies on: the user and directories, the default config passes `edgeferry check`, the
# agent runs as its user, a local config edit survives a reinstall, and remove / purge
# leave the system clean; first scripts/check-deb.sh (lintian, hardening) on the file.
# Changes the machine: CI, or a throwaway VM.
#   scripts/test-package.sh build/packages/edgeferry_0.1.0-1_amd64.deb
set -euo pipefail
DEB=${1:?usage: scripts/test-package.sh PACKAGE.deb}
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
CONF=/etc/edgeferry/edgeferry.toml
fail() { echo "test-package: FAIL: $*" >&2; exit 1; }
ok() { echo "test-package: ok: $*"; }

"$(dirname "$0")"/check-deb.sh "$DEB" || fail "check-deb.sh $DEB"

if dpkg-query -W -f='${Status}' edgeferry 2>/dev/null | grep -q installed; then
  fail "edgeferry is already installed here; this test needs a machine without it"
fi
$SUDO dpkg -i "$DEB" || fail "dpkg -i $DEB"
ok "installed $(dpkg-query -W -f='${Package} ${Version} ${Architecture}' edgeferry)"

id edgeferry >/dev/null || fail "no edgeferry user"
id -nG edgeferry | tr ' ' '\n' | grep -qx dialout || fail "edgeferry is not in dialout"
[ "$(getent passwd edgeferry | cut -d: -f7)" = /usr/sbin/nologin ] || fail "edgeferry has a login shell"
[ "$(stat -c '%U %a' /var/lib/edgeferry)" = "edgeferry 750" ] || fail "/var/lib/edgeferry: $(stat -c '%U %a' /var/lib/edgeferry)"
[ "$(stat -c '%U:%G %a' $CONF)" = "root:edgeferry 640" ] || fail "$CONF: $(stat -c '%U:%G %a' $CONF)"
dpkg-query -W -f='${Conffiles}\n' edgeferry | grep -q "$CONF" || fail "$CONF is not a conffile"
ok "user edgeferry (dialout, nologin), /var/lib/edgeferry 0750, $CONF root:edgeferry 0640 conffile"

/usr/bin/edgeferry check --config $CONF || fail "edgeferry check on the installed default config"
$SUDO runuser -u edgeferry -- /usr/bin/edgeferry check --config $CONF >/dev/null || fail "check as the edgeferry user"
out=$(systemd-analyze verify /usr/lib/systemd/system/edgeferry.service 2>&1) || true
[ -z "$out" ] || fail "systemd-analyze verify: $out"
ok "edgeferry check passes (as root and as edgeferry); the installed unit verifies"

# What an operator reads: man pages, documents, the copyright file; tab completion.
DOC=/usr/share/doc/edgeferry
for f in /usr/share/man/man1/edgeferry.1.gz /usr/share/man/man1/edgeferry-replay.1.gz $DOC/copyright \
  $DOC/changelog.Debian.gz $DOC/README.md $DOC/docs/operations.md $DOC/docs/configuration.md $DOC/docs/fleet.md \
  $DOC/docs/architecture.md $DOC/buffer/FORMAT.md; do
  [ -s "$f" ] || fail "missing $f"
done
# The man page documents every subcommand, not only the top-level --help.
page=$(zcat /usr/share/man/man1/edgeferry.1.gz)
for cmd in "edgeferry run" "edgeferry dlq replay" "edgeferry buffer check"; do
  grep -qF ".SS \"$cmd\"" <<<"$page" || fail "edgeferry(1) has no section for $cmd"
done
zcat $DOC/changelog.Debian.gz | head -1 | grep -qF "($(dpkg-query -W -f='${Version}' edgeferry))" ||
  fail "changelog.Debian.gz does not start with the package's version"
# Completion as bash does it: COMP_WORDS/COMP_CWORD in, COMPREPLY out.
complete_words() {
  bash -c 'source /usr/share/bash-completion/bash_completion
    source /usr/share/bash-completion/completions/edgeferry
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _edgeferry edgeferry "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' _ "$@"
}
[ -r /usr/share/bash-completion/bash_completion ] || fail "bash-completion is not installed (scripts/install-deps.sh)"
got=$(complete_words edgeferry "")
for cmd in run check status buffer dlq version; do
  [[ " $got" == *" $cmd "* ]] || fail "completion of 'edgeferry ' lacks $cmd: $got"
done
got=$(complete_words edgeferry dlq "")
[ "$got" = "list move purge replay show " ] || fail "completion of 'edgeferry dlq ': $got"
got=$(complete_words edgeferry dlq replay --s)
[ "$got" = "--sink " ] || fail "completion of 'edgeferry dlq replay --s': $got"
ok "man pages (every subcommand), docs, copyright, changelog $(dpkg-query -W -f='${Version}' edgeferry), bash completion"

# The agent as its user for a few seconds: it creates its buffer and stops cleanly on SIGTERM.
rc=0
$SUDO timeout -s TERM 4 runuser -u edgeferry -- /usr/bin/edgeferry run --config $CONF >/tmp/edgeferry-pkg.log 2>&1 || rc=$?
[ $rc -eq 0 ] || [ $rc -eq 124 ] || { cat /tmp/edgeferry-pkg.log; fail "edgeferry run exited $rc"; }
grep -q "stopped cleanly" /tmp/edgeferry-pkg.log || { cat /tmp/edgeferry-pkg.log; fail "no clean stop"; }
[ "$(stat -c %U /var/lib/edgeferry/buffer.db)" = edgeferry ] || fail "buffer.db not owned by edgeferry"
ok "edgeferry run as edgeferry: buffer created, clean stop on SIGTERM"

# A local edit to the conffile survives reinstalling the package.
echo "# local edit" | $SUDO tee -a $CONF >/dev/null
$SUDO dpkg -i "$DEB" >/dev/null || fail "reinstall"
tail -1 $CONF | grep -q "# local edit" || fail "reinstall replaced the edited $CONF"
ok "a local edit of $CONF survives a reinstall"

$SUDO dpkg -r edgeferry >/dev/null || fail "dpkg -r"
[ ! -e /usr/bin/edgeferry ] || fail "remove left /usr/bin/edgeferry"
[ -e $CONF ] || fail "remove deleted the configuration"
[ -e /var/lib/edgeferry/buffer.db ] || fail "remove deleted the buffer"
ok "remove: binaries gone, configuration and buffer kept"

$SUDO dpkg -P edgeferry >/dev/null || fail "dpkg -P"
[ ! -e /etc/edgeferry ] || fail "purge left /etc/edgeferry: $(ls -A /etc/edgeferry)"
[ ! -e /var/lib/edgeferry ] || fail "purge left /var/lib/edgeferry"
! dpkg-query -W edgeferry >/dev/null 2>&1 || [ -z "$(dpkg-query -W -f='${Status}' edgeferry | grep installed)" ] || fail "still known to dpkg"
left=$(find /etc/systemd /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
  -name '*edgeferry*' 2>/dev/null || true)
[ -z "$left" ] || fail "purge left systemd state: $left"
ok "purge: /etc/edgeferry, /var/lib/edgeferry and the service's enable links gone"
echo "test-package: $(basename "$DEB"): all checks passed"
