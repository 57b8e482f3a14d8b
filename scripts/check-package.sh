#!/usr/bin/env bash
# Builds the Debian package (the "package" preset: /usr prefix, no tests,
# `cpack -G DEB`) and checks it as an installer would see it: unpacked into a
# scratch root, every file in place, the binaries run, the sysusers and
# tmpfiles entries apply to that root, the maintainer scripts enable but do
# not start the service, and the unit passes `systemd-analyze verify` with a
# `systemd-analyze security` exposure of at most 2.5. Prints the figures;
# exit 0 only if all hold. Runs as part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

cmake --preset package >/dev/null
cmake --build --preset package -j "$(nproc)" >/dev/null
rm -f build/package/p2pd_*.deb
(cd build/package && cpack -G DEB >/dev/null 2>&1) || { echo "check-package: cpack failed" >&2; exit 1; }
DEB=$(ls build/package/p2pd_*.deb)
ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
failed=0
fail() {
  echo "check-package: FAILED: $*" >&2
  failed=1
}

echo "package: $DEB ($(stat -c %s "$DEB") bytes)"
echo "depends: $(dpkg-deb -f "$DEB" Depends)"
dpkg -x "$DEB" "$ROOT"
for file in usr/bin/p2pd usr/bin/p2pctl usr/lib/systemd/system/p2pd.service usr/lib/sysusers.d/p2pd.conf \
  usr/lib/tmpfiles.d/p2pd.conf etc/p2pd/p2pd.conf usr/share/man/man8/p2pd.8.gz usr/share/man/man1/p2pctl.1.gz \
  usr/share/bash-completion/completions/p2pctl; do
  if [[ -f "$ROOT/$file" ]]; then echo "  /$file"; else fail "/$file is not in the package"; fi
done
for page in usr/share/man/man8/p2pd.8.gz usr/share/man/man1/p2pctl.1.gz; do
  gzip -t "$ROOT/$page" || fail "/$page is not gzip"
done
"$ROOT/usr/bin/p2pd" --version >/dev/null || fail "p2pd --version"
"$ROOT/usr/bin/p2pctl" --version >/dev/null || fail "p2pctl --version"
cmp -s "$ROOT/etc/p2pd/p2pd.conf" config/p2pd.conf.example || fail "/etc/p2pd/p2pd.conf is not config/p2pd.conf.example"

CONTROL="$ROOT/DEBIAN"
dpkg-deb -e "$DEB" "$CONTROL"
grep -qx /etc/p2pd/p2pd.conf "$CONTROL/conffiles" || fail "/etc/p2pd/p2pd.conf is not a conffile"
grep -q "systemd-sysusers p2pd.conf" "$CONTROL/postinst" || fail "postinst does not create the p2pd user"
grep -q "deb-systemd-helper enable p2pd.service" "$CONTROL/postinst" || fail "postinst does not enable the unit"
if grep -v "^ *#" "$CONTROL/postinst" | grep -Eq "(systemctl|deb-systemd-invoke) +(--[a-z]+ +)*(re)?start"; then
  fail "postinst starts the service"
fi

# The user, group and directories, made in the scratch root.
systemd-sysusers --root="$ROOT" "$ROOT/usr/lib/sysusers.d/p2pd.conf" >/dev/null 2>&1 ||
  fail "systemd-sysusers refused the entry"
grep -q "^p2pd:" "$ROOT/etc/passwd" || fail "no p2pd user after systemd-sysusers"
if [[ $(id -u) == 0 ]]; then  # the entries chown to p2pd
  systemd-tmpfiles --root="$ROOT" --create "$ROOT/usr/lib/tmpfiles.d/p2pd.conf" || fail "systemd-tmpfiles refused the entry"
  [[ $(stat -c %a "$ROOT/var/lib/p2pd") == 700 ]] || fail "/var/lib/p2pd is not mode 0700"
else
  echo "systemd-tmpfiles: not checked (needs root to chown)"
fi

# The unit, checked against this machine's systemd with its ExecStart
# pointed at the unpacked binary (verify checks that it is executable).
UNIT_DIR="$ROOT/unit-check"
mkdir -p "$UNIT_DIR"
sed "s|^ExecStart=.*|ExecStart=$ROOT/usr/bin/p2pd|" "$ROOT/usr/lib/systemd/system/p2pd.service" >"$UNIT_DIR/p2pd.service"
grep -q "^ExecStart=/usr/bin/p2pd$" "$ROOT/usr/lib/systemd/system/p2pd.service" || fail "ExecStart is not /usr/bin/p2pd"
if systemd-analyze verify --man=no "$UNIT_DIR/p2pd.service"; then
  echo "systemd-analyze verify: ok"
else
  fail "systemd-analyze verify"
fi
EXPOSURE=$(systemd-analyze security --offline=true "$UNIT_DIR/p2pd.service" |
  sed -n 's/.*Overall exposure level for p2pd.service: \([0-9.]*\).*/\1/p') || EXPOSURE=""
[[ -n $EXPOSURE ]] || fail "systemd-analyze security --offline=true gave no exposure"
echo "systemd-analyze security --offline=true: exposure $EXPOSURE (target <= 2.5)"
awk -v e="$EXPOSURE" 'BEGIN { exit !(e != "" && e <= 2.5) }' || fail "exposure ${EXPOSURE:-unknown} is over 2.5"

if ((failed)); then exit 1; fi
echo "check-package: the package holds every file and its unit passes"
