#!/usr/bin/env bash
# The demo: builds collectord, starts a local fleet of four Go programs to watch (workloads
# mixed, cpu, leak and deadlock, each with net/http/pprof and a gops agent), writes them as a
# Prometheus file_sd list to .state/demo/targets.json, starts `collectord -c config/demo.yaml`
# (storage under .state/demo/) and shows `collectorctl list` every 10 s until Ctrl-C. On Ctrl-C,
# or on any exit, it stops everything it started.
#
# Usage (as root on Debian 12, from anywhere): bash packaging/run-demo.sh [--once]
#   --once   start, show the targets once, then stop everything (a smoke run)
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

once=0
for arg in "$@"; do
    case "$arg" in
    --once) once=1 ;;
    -h | --help)
        sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "run-demo: unknown argument '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done

state=.state/demo
config=config/demo.yaml
fleet_bin=build/tests/fleet/collectord-fleet
interval=10

fleet_pid=
daemon_pid=
sleep_pid=
stopped=0

# Stops what this script started, newest first; each gets SIGTERM, then SIGKILL after 10 s.
stop_all() {
    if [ "$stopped" = 1 ]; then
        return 0
    fi
    stopped=1
    local pid
    if [ -n "$sleep_pid" ]; then
        kill "$sleep_pid" 2>/dev/null || true
    fi
    for pid in $daemon_pid $fleet_pid; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 100); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            if kill -0 "$pid" 2>/dev/null; then
                echo "run-demo: pid $pid did not stop in 10 s, killing it" >&2
                kill -KILL "$pid" 2>/dev/null || true
            fi
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [ -n "$fleet_pid$daemon_pid" ]; then
        echo "run-demo: stopped everything it started"
    fi
    return 0
}
trap 'stop_all; exit 0' INT TERM
trap 'stop_all' EXIT

echo "==> dependencies"
bash packaging/deps.sh

echo "==> build (build/)"
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc)" --target collectord collectorctl collectord-fleet

echo "==> demo fleet"
mkdir -p "$state/gops"
rm -f "$state/fleet.json" "$state/targets.json"
"$fleet_bin" -n 4 -workloads mixed,cpu,leak,deadlock \
    -gops-dir "$state/gops" -list "$state/fleet.json" \
    -file-sd "$state/targets.json" -file-sd-job demo \
    >"$state/fleet.log" 2>&1 &
fleet_pid=$!
for _ in $(seq 300); do
    [ -f "$state/fleet.json" ] && break # written last, once every target is ready
    if ! kill -0 "$fleet_pid" 2>/dev/null; then
        echo "run-demo: the fleet exited during start-up; its log ($state/fleet.log):" >&2
        cat "$state/fleet.log" >&2
        exit 1
    fi
    sleep 0.1
done
if [ ! -f "$state/fleet.json" ]; then
    echo "run-demo: the fleet was not ready after 30 s; see $state/fleet.log" >&2
    exit 1
fi
sed -n 's/^collectord-fleet\[\([0-9]*\)\]: ready: /  pid \1: /p' "$state/fleet.log"
echo "  file_sd targets for collectord: $state/targets.json"

echo "==> collectord"
# The query socket is whatever the demo config names (default: beside the demo's storage).
socket=$state/collectord.sock
if [ -f "$config" ]; then
    s=$(sed -n 's/^[[:space:]]*socket:[[:space:]]*["'\'']\{0,1\}\([^"'\''#[:space:]]*\).*/\1/p' "$config" | head -n 1)
    if [ -n "$s" ]; then
        # Relative paths in a config file are relative to the file's directory.
        case "$s" in
        /*) socket=$s ;;
        *) socket=$(dirname "$config")/$s ;;
        esac
    fi
fi
daemon_note=
if [ ! -f "$config" ]; then
    daemon_note="collectord not started: $config does not exist in this checkout yet"
else
    build/collectord -c "$config" >"$state/collectord.log" 2>&1 &
    daemon_pid=$!
    # Give it a moment to fail on the spot (bad config, or a build without the daemon yet).
    for _ in $(seq 20); do
        kill -0 "$daemon_pid" 2>/dev/null || break
        [ -S "$socket" ] && break
        sleep 0.1
    done
    if ! kill -0 "$daemon_pid" 2>/dev/null; then
        rc=0
        wait "$daemon_pid" || rc=$?
        daemon_pid=
        daemon_note="collectord could not start (exit $rc: $(head -n 1 "$state/collectord.log")); the daemon is probably not implemented in this build yet — the fleet keeps running on its own"
    else
        echo "  collectord pid $daemon_pid, config $config, socket $socket, log $state/collectord.log"
    fi
fi
if [ -n "$daemon_note" ]; then
    echo "run-demo: $daemon_note"
fi

echo "==> watching (Ctrl-C stops everything)"
while :; do
    if ! kill -0 "$fleet_pid" 2>/dev/null; then
        echo "run-demo: the fleet stopped on its own; see $state/fleet.log" >&2
        exit 1
    fi
    echo "--- $(date '+%H:%M:%S')"
    if [ -n "$daemon_pid" ]; then
        if kill -0 "$daemon_pid" 2>/dev/null; then
            build/collectorctl -s "$socket" list || true
        else
            echo "run-demo: collectord exited; last lines of $state/collectord.log:" >&2
            tail -n 5 "$state/collectord.log" >&2
            daemon_pid=
        fi
    else
        up=0
        while read -r pid; do
            kill -0 "$pid" 2>/dev/null && up=$((up + 1))
        done < <(sed -n 's/.*"pid": \([0-9]*\).*/\1/p' "$state/fleet.json")
        echo "fleet: $up of 4 targets running (no collectord to list them)"
    fi
    if [ "$once" = 1 ]; then
        break
    fi
    # A waited-for background sleep, so Ctrl-C is handled at once.
    sleep "$interval" &
    sleep_pid=$!
    wait "$sleep_pid" || true
    sleep_pid=
done
