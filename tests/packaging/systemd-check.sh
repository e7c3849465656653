#!/usr/bin/env bash
# systemd-check.sh — the Debian package under a real systemd, for what tests/packaging/as-unit.sh
# cannot emulate: the unit's seccomp filter (SystemCallFilter=@system-service,
# MemoryDenyWriteExecute=, RestrictAddressFamilies=, ...), PrivateDevices=, systemctl
# start/reload/stop with Type=notify, the watchdog over a whole WatchdogSec= period, socket
# activation through collectord.socket, journald's priorities, `systemctl enable` (Also=), an
# upgrade (postinst try-restart) and remove/purge with systemd running.
#
# It boots this machine's own OS as a container (systemd-nspawn -b, the root file system behind
# a throw-away overlay, private network), so nothing it does reaches the host: the package, the
# user, the database all live in the overlay's tmpfs and vanish at power-off. It takes about two
# minutes and starts whatever services the host's OS would start in a container, so it is not
# part of tests/run.sh. Run it on demand, as root, from a normal (not sanitized) build:
#   apt-get install systemd-container        # once: systemd-nspawn
#   bash tests/packaging/systemd-check.sh build
# Exit status 0 when every check passed; each check prints "ok" or "FAILED".
set -euo pipefail

build=$(cd "${1:?usage: systemd-check.sh BUILD_DIR}" && pwd)
[ "$(id -u)" = 0 ] || {
    echo "systemd-check: run as root" >&2
    exit 2
}
command -v systemd-nspawn >/dev/null || {
    echo "systemd-check: needs systemd-nspawn: apt-get install systemd-container" >&2
    exit 2
}
fleet=$build/tests/fleet/collectord-fleet
[ -x "$fleet" ] || {
    echo "systemd-check: $fleet is missing: cmake --build $build" >&2
    exit 2
}

work=$(mktemp -d /var/tmp/collectord-systemd-check.XXXXXX)
machine=cdcheck$$
nspawn_pid=
leader=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    if [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null; then
        nsenter -t "$leader" -a systemctl poweroff >/dev/null 2>&1 || true
    fi
    if [ -n "$nspawn_pid" ]; then
        for _ in $(seq 60); do
            kill -0 "$nspawn_pid" 2>/dev/null || break
            sleep 1
        done
        kill -KILL "$nspawn_pid" 2>/dev/null || true
        wait "$nspawn_pid" 2>/dev/null || true
    fi
    rm -rf "/run/systemd/nspawn/propagate/$machine" "$work"
}
trap cleanup EXIT

echo "==> packages (0.1.0-style current version and a fake newer one, for the upgrade)"
version=$("$build/collectord" --version | cut -d' ' -f2)
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/deb" >"$work/cpack.log" 2>&1
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/deb2" \
    -D "CPACK_PACKAGE_VERSION=$version+check" >>"$work/cpack.log" 2>&1
deb=$(ls "$work"/deb/collectord_*.deb)
deb2=$(ls "$work"/deb2/collectord_*.deb)

# ---- what runs inside the container ----------------------------------------------------------
cat >"$work/inside.sh" <<'INSIDE'
#!/bin/bash
set -u
deb=$1 deb2=$2 fleet=$3
failed=0
check() { # check "what" command...
    local what=$1
    shift
    if "$@" >/tmp/check.out 2>&1; then
        echo "ok      $what"
    else
        echo "FAILED  $what"
        sed 's/^/        /' /tmp/check.out | tail -n 20
        failed=1
    fi
}
ctl() { runuser -u cdop -- collectorctl "$@"; }
prop() { systemctl show -p "$2" --value "$1"; }
journal_has() { journalctl -u collectord --no-pager -o cat | grep -q -- "$1"; }

check "dpkg -i" dpkg -i "$deb"
check "installed disabled and stopped" \
    test "$(systemctl is-enabled collectord.service collectord.socket | sort -u)" = disabled
check "systemd-analyze verify" systemd-analyze verify collectord.service collectord.socket

# a Go program of root's, gops port file in /root/.config/gops (0700 home)
systemd-run --quiet --unit=cdfleet -p Environment=HOME=/root "$fleet" -workload mixed \
    -list /run/cdfleet.json
for _ in $(seq 100); do [ -f /run/cdfleet.json ] && break; sleep 0.1; done
pid=$(sed -n 's/.*"pid": \([0-9]*\).*/\1/p' /run/cdfleet.json | head -1)
port=$(sed -n 's/.*"pprof_port": \([0-9]*\).*/\1/p' /run/cdfleet.json | head -1)
echo "[{\"targets\": [\"127.0.0.1:$port\"]}]" >/etc/collectord/targets/check.json

check "systemctl start (Type=notify: returns once READY=1)" systemctl start collectord
check "active, running" test "$(prop collectord ActiveState)/$(prop collectord SubState)" = active/running
mp=$(prop collectord MainPID)
check "runs as collectord, with the seccomp filter and only its two capabilities" \
    bash -c "grep -q '^Uid:.*$(id -u collectord)' /proc/$mp/status &&
             grep -q '^Seccomp:.*2' /proc/$mp/status &&
             grep -q '^CapEff:.*0000000000080004' /proc/$mp/status &&
             grep -q '^NoNewPrivs:.*1' /proc/$mp/status"
useradd --system --no-create-home --shell /usr/sbin/nologin --groups collectord cdop
check "collectorctl as a member of group collectord" ctl status
check "collectorctl refused to nobody" bash -c '! runuser -u nobody -- collectorctl status'
# one line per target of `collectorctl -o json list`
local_targets() {
    ctl -o json list | sed 's/{"id":/\n{"id":/g' | grep '"job":"local"' | grep "\"pid\":\"$pid\""
}
discovered() {
    local t
    for _ in $(seq 60); do
        t=$(local_targets)
        if grep -q '"scheme":"gops"' <<<"$t" && grep -q '"scheme":"http"' <<<"$t"; then
            return 0
        fi
        sleep 1
    done
    return 1
}
check "local discovery finds root's Go program (gops and pprof) under the hardening" discovered
check "every default kind (cpu 10s, trace, dumps...) captured under seccomp" \
    bash -c "runuser -u cdop -- collectorctl capture job=files --incident check |
             grep -q '8 ok, 0 not'"
check "systemctl reload (RELOADING=1 ... READY=1)" systemctl reload collectord
check "reload applied" journal_has "reload: configuration from"
echo "        (waiting 40 s: one whole WatchdogSec=30s period and more)"
sleep 40
check "the watchdog was fed: not restarted, same pid" \
    test "$(prop collectord NRestarts)/$(prop collectord MainPID)" = "0/$mp"
check "journald got priorities, not '<N>' text" \
    bash -c "! journalctl -u collectord -o cat --no-pager | grep -q '^<[0-7]>' &&
             journalctl -u collectord -p notice -o cat --no-pager | grep -q ' started: config '"
check "no sandbox denials in the log" \
    bash -c "! journalctl -u collectord -o cat --no-pager |
               grep -iE 'operation not permitted|read-only file system|bad system call'"
systemctl stop collectord
check "stopped cleanly (exit 0)" test "$(prop collectord Result)" = success

check "socket unit starts" systemctl start collectord.socket
check "a client activates the service" ctl status
check "the service took systemd's socket" journal_has "using the socket systemd passed in"
systemctl stop collectord.service 2>/dev/null
check "stopped service: the next client starts it again" ctl status
check "enable enables the socket too (Also=)" \
    bash -c 'systemctl enable collectord && systemctl is-enabled collectord.socket'

snap=$(ctl -o json capture job=files --kind goroutine | grep -o '"id":[0-9]*' | head -1 |
    cut -d: -f2)
check "a snapshot to pin" test -n "$snap"
check "pin" ctl pin "${snap:-none}"
old=$(prop collectord MainPID)
check "upgrade with dpkg -i (newer version)" dpkg -i "$deb2"
check "upgrade restarted the running service" \
    bash -c "test \"\$(systemctl show -p MainPID --value collectord)\" != $old &&
             systemctl is-active collectord"
check "pins and incident survived the upgrade" \
    bash -c "runuser -u cdop -- collectorctl snapshots --pinned | grep -qE '^ *${snap:-none} ' &&
             runuser -u cdop -- collectorctl incidents | grep -q '^check '"
check "still enabled after the upgrade" systemctl is-enabled collectord

rm -f /etc/collectord/targets/check.json
check "dpkg -r" dpkg -r collectord
check "remove stopped service and socket" \
    bash -c '! systemctl is-active collectord.service collectord.socket'
check "remove kept the database and the user" \
    bash -c 'test -s /var/lib/collectord/collectord.db && getent passwd collectord'
userdel cdop
check "dpkg -P" dpkg -P collectord
check "purge removed database, config, user, enablement links" \
    bash -c '! test -e /var/lib/collectord && ! test -e /etc/collectord &&
             ! getent passwd collectord && ! ls /etc/systemd/system/*.wants/collectord.* 2>/dev/null'
exit $failed
INSIDE
chmod +x "$work/inside.sh"

echo "==> booting this OS in a container ($machine)"
mkdir "$work/root"
unshare -m --propagation private sh -c "mount --bind / '$work/root' && exec systemd-nspawn \
    -D '$work/root' --volatile=overlay --private-network --register=no --keep-unit \
    --machine=$machine --console=read-only --bind-ro='$work' --bind-ro='$(dirname "$fleet")' -b" \
    >"$work/nspawn.log" 2>&1 &
nspawn_pid=$!
for _ in $(seq 120); do
    leader=$({ ps -o pid= --ppid "$nspawn_pid" || true; } | head -n 1 | tr -d ' ')
    if [ -n "$leader" ] &&
        state=$(nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null) &&
        { [ "$state" = running ] || [ "$state" = degraded ]; }; then
        break
    fi
    kill -0 "$nspawn_pid" 2>/dev/null || {
        cat "$work/nspawn.log" >&2
        exit 1
    }
    sleep 1
done
if [ "${state:-}" != running ] && [ "${state:-}" != degraded ]; then
    echo "systemd-check: the container did not come up (state: ${state:-none}); log:" >&2
    tail -n 30 "$work/nspawn.log" >&2
    exit 1
fi
echo "==> checks inside (systemd: $state)"
rc=0
nsenter -t "$leader" -a "$work/inside.sh" "$deb" "$deb2" "$fleet" || rc=$?
if [ "$rc" = 0 ]; then
    echo "==> all checks passed under systemd"
else
    echo "==> some checks FAILED under systemd" >&2
fi
exit "$rc"
