#!/usr/bin/env bash
# The Debian package end to end (run by crates/mware/tests/package.rs, as root):
# build it from the debug binary, install it with dpkg -i, check the unit with
# systemd-analyze verify, run the unit's ExecStart line as its user against the example
# site on port $1, read /api/v1/status, remove and purge the package. These machines run
# no systemd, so the unit's own settings (user, working and state folder, environment
# file) are applied here by hand, from the installed unit file.
#   usage: package-test.sh PORT      (CARGO_TARGET_DIR: where target/debug/mware is)
set -euo pipefail
cd "$(dirname "$0")/.."
port="${1:?usage: package-test.sh PORT}"
[ "$(id -u)" = 0 ] || { echo "package-test: needs root (dpkg -i)" >&2; exit 1; }
exec 9>/var/tmp/mware-package-test.lock
flock -w 120 9 || { echo "package-test: another package test holds the lock" >&2; exit 1; }
if dpkg -s mware >/dev/null 2>&1; then
  echo "package-test: a mware package is installed here already; not touching it" >&2; exit 1
fi
work=$(mktemp -d /var/tmp/mware-package-test.XXXXXX)
user_existed=0; getent passwd mware >/dev/null && user_existed=1
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  dpkg --purge mware >/dev/null 2>&1 || true
  rm -f /etc/mware/site.json; rmdir /etc/mware 2>/dev/null || true
  if [ "$user_existed" = 0 ] && getent passwd mware >/dev/null; then
    userdel mware 2>/dev/null || true; groupdel mware 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== build the package"
bash scripts/package.sh --dev "$work" >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
deb=$(ls "$work"/mware_*.deb)
dpkg-deb --info "$deb" | grep -E "Package|Version|Depends"
contents=$(dpkg-deb --contents "$deb" | awk '{print $6}')
for f in ./usr/bin/mware 'mware@.service' ./usr/share/snmp/mibs/MWARE-ALARMS-MIB.txt \
         ./usr/share/doc/mware/examples/minimal.json ./usr/share/doc/mware/examples/site.json; do
  grep -q -- "$f\$" <<<"$contents" || { echo "the package lacks $f" >&2; exit 1; }
done

echo "== install it"
dpkg -i "$deb"
unit=/lib/systemd/system/mware@.service
[ -f "$unit" ] || unit=/usr/lib/systemd/system/mware@.service
test -f "$unit"
getent passwd mware | grep -q ":/var/lib/mware:/usr/sbin/nologin$" || { echo "no mware system user" >&2; exit 1; }
[ "$(stat -c '%U %a' /var/lib/mware)" = "mware 700" ] || { echo "state folder: $(stat -c '%U %a' /var/lib/mware)" >&2; exit 1; }
test -f /usr/share/snmp/mibs/MWARE-ALARMS-MIB.txt

echo "== systemd-analyze verify"
# A template is verified through an instance of it; the unit file itself is the package's.
cp "$unit" "$work/mware@mware1.service"
# Any complaint (an unknown key, a missing binary) fails the test, not only an error.
verify=$(systemd-analyze verify "$work/mware@mware1.service" 2>&1) || { echo "$verify" >&2; exit 1; }
[ -z "$verify" ] || { echo "systemd-analyze verify: $verify" >&2; exit 1; }
for key in "NoNewPrivileges=yes" "ProtectSystem=strict" "ReadWritePaths=/var/lib/mware" "PrivateTmp=yes" \
           "StateDirectory=mware" "StateDirectoryMode=0700" "User=mware" "Restart=on-failure" \
           'ExecReload=/bin/kill -HUP $MAINPID'; do
  grep -qxF "$key" "$unit" || { echo "unit lacks $key" >&2; exit 1; }
done

echo "== run the unit's ExecStart as its user"
sed "s/\"api_port\": 8271/\"api_port\": $port/" /usr/share/doc/mware/examples/minimal.json > /etc/mware/site.json
grep -q "\"api_port\": $port" /etc/mware/site.json
chown root:mware /etc/mware/site.json; chmod 0640 /etc/mware/site.json
exec_start=$(sed -n 's/^ExecStart=//p' "$unit" | sed 's/%i/mware1/g')
user=$(sed -n 's/^User=//p' "$unit"); dir=$(sed -n 's/^WorkingDirectory=//p' "$unit")
unit_env=$(sed -n "s/^Environment=//p" "$unit" | tr "\n" " ")
echo "as $user in $dir: $exec_start"
# shellcheck disable=SC2086 # the unit's line is split into words as systemd splits it
(cd "$dir" && exec setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs \
   env -i PATH=/usr/bin:/bin $unit_env $exec_start) >"$work/daemon.log" 2>&1 &
pid=$!
status=""
for _ in $(seq 1 100); do
  status=$(curl -sf --max-time 2 "http://127.0.0.1:$port/api/v1/status" || true)
  if [ -n "$status" ] && [ "$(jq -r .state <<<"$status" 2>/dev/null)" = "active" ]; then break; fi
  kill -0 "$pid" 2>/dev/null || { cat "$work/daemon.log" >&2; echo "mware exited" >&2; exit 1; }
  sleep 0.2
done
echo "$status" | jq -c "{instance, group, state, reason}"
[ "$(jq -r .state <<<"$status")" = "active" ] || { cat "$work/daemon.log" >&2; echo "not active: $status" >&2; exit 1; }
# It writes only under its state folder, as its user.
find /var/lib/mware -newer "$deb" -printf '%u %p\n' | sort | head -n 5
[ -z "$(find /var/lib/mware ! -user mware)" ] || { echo "files of another user in the state folder" >&2; exit 1; }
echo "== reload (SIGHUP, as ExecReload sends it), then stop (SIGTERM)"
kill -HUP "$pid"; sleep 0.5
kill -0 "$pid" || { cat "$work/daemon.log" >&2; echo "mware died on SIGHUP" >&2; exit 1; }
kill -TERM "$pid"; rc=0; wait "$pid" || rc=$?; pid=""
[ "$rc" = 0 ] || { cat "$work/daemon.log" >&2; echo "mware exited with $rc on SIGTERM" >&2; exit 1; }

echo "== remove and purge"
dpkg -r mware
if [ -e /usr/bin/mware ] || [ -e "$unit" ]; then echo "dpkg -r left the binary or the unit" >&2; exit 1; fi
dpkg --purge mware
[ ! -e /var/lib/mware ] || { echo "/var/lib/mware left after purge" >&2; exit 1; }
echo "package-test: ok"
