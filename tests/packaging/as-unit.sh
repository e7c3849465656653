#!/usr/bin/env bash
# as-unit.sh — runs a service unit's ExecStart= the way systemd would start it, on a host where
# systemd is not PID 1 (CI containers, sandboxes), so a test can check that the installed unit's
# command really starts under the unit's user, capabilities and file-system hardening.
#
# Usage (as root): as-unit.sh UNIT_FILE [ARG...]     ARGs are appended to ExecStart=
#                  as-unit.sh --explain UNIT_FILE     what is emulated and what is not, then exit
#
# The process keeps this script's pid through a chain of exec()s (unshare, setpriv, env), so the
# caller's pid is the service's main pid, as with systemd. From the caller's environment only what
# systemd itself would set is passed on: NOTIFY_SOCKET, WATCHDOG_USEC, JOURNAL_STREAM, LISTEN_FDS,
# LISTEN_FDNAMES (WATCHDOG_PID and LISTEN_PID are set to the main pid). stdin is /dev/null,
# stdout and stderr are the caller's (point them at a file and set JOURNAL_STREAM to its
# device:inode to look like the journal).
#
# Emulated: User=, Group= (with the user's supplementary groups, like initgroups), UMask=,
# LimitNOFILE=, NoNewPrivileges=, CapabilityBoundingSet=, AmbientCapabilities=, StateDirectory=,
# RuntimeDirectory=, ConfigurationDirectory= (+Mode, and their *_DIRECTORY variables),
# ProtectSystem= (yes/full/strict: read-only remounts in a private mount namespace, State- and
# RuntimeDirectory= writable), ProtectHome= (read-only/yes/tmpfs), PrivateTmp= (fresh tmpfs on /tmp
# and /var/tmp), ProtectKernelTunables= and ProtectControlGroups= (read-only /proc/sys, /sys),
# WorkingDirectory= (default /), a clean environment (PATH, HOME, USER, LOGNAME, SHELL,
# INVOCATION_ID). Not emulated (--explain lists the ones the unit uses): seccomp (SystemCallFilter=,
# SystemCallArchitectures=, MemoryDenyWriteExecute=, LockPersonality=, RestrictAddressFamilies=,
# RestrictNamespaces=, RestrictRealtime=, RestrictSUIDSGID=), PrivateDevices=, ProtectClock=,
# ProtectHostname=, ProtectKernelModules=, ProtectKernelLogs=, RemoveIPC=, PrivateMounts=,
# watchdog enforcement, restarts, cgroups.
set -euo pipefail

die() {
    echo "as-unit: $*" >&2
    exit 1
}

explain=0
if [ "${1:-}" = "--explain" ]; then
    explain=1
    shift
fi
[ $# -ge 1 ] || die "usage: as-unit.sh [--explain] UNIT_FILE [ARG...]"
unit=$1
shift
[ -r "$unit" ] || die "cannot read $unit"

# ---- the [Service] section: the last assignment wins; for list settings an empty assignment
# resets the list, as in systemd. Quoting and specifiers are not supported (our units use none).
declare -A one=()
declare -A list=()
declare -A seen=()
section=
while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    case "$line" in
    '' | '#'* | ';'*) continue ;;
    '['*']')
        section=${line#[}
        section=${section%]}
        continue
        ;;
    esac
    [ "$section" = "Service" ] || continue
    key=${line%%=*}
    val=${line#*=}
    key=${key%"${key##*[![:space:]]}"}
    val=${val#"${val%%[![:space:]]*}"}
    seen[$key]=1
    case "$key" in
    CapabilityBoundingSet | AmbientCapabilities | StateDirectory | RuntimeDirectory | \
        ConfigurationDirectory)
        if [ -z "$val" ]; then
            list[$key]=
        else
            list[$key]="${list[$key]:-} $val"
        fi
        ;;
    *) one[$key]=$val ;;
    esac
done <"$unit"

declare -A emulated=()
for k in ExecStart User Group UMask LimitNOFILE NoNewPrivileges CapabilityBoundingSet \
    AmbientCapabilities StateDirectory StateDirectoryMode RuntimeDirectory RuntimeDirectoryMode \
    RuntimeDirectoryPreserve ConfigurationDirectory ConfigurationDirectoryMode ProtectSystem \
    ProtectHome PrivateTmp PrivateMounts ProtectKernelTunables ProtectControlGroups \
    WorkingDirectory; do
    emulated[$k]=1
done
# Settings about systemd's own handling of the service, not about how the process runs.
declare -A bookkeeping=()
for k in Type NotifyAccess ExecReload Restart RestartSec WatchdogSec TimeoutStopSec \
    TimeoutStartSec; do
    bookkeeping[$k]=1
done
if [ "$explain" = 1 ]; then
    for k in $(printf '%s\n' "${!seen[@]}" | sort); do
        if [ -n "${emulated[$k]:-}" ]; then
            echo "emulated: $k"
        elif [ -n "${bookkeeping[$k]:-}" ]; then
            echo "systemd's own bookkeeping: $k"
        else
            echo "NOT emulated: $k"
        fi
    done
    exit 0
fi

[ "$(id -u)" = 0 ] || die "must run as root (it switches to the unit's user)"
exec_start=${one[ExecStart]:-}
[ -n "$exec_start" ] || die "$unit has no ExecStart="
case "$exec_start" in
[-@+!:]*) die "ExecStart= prefixes are not supported: $exec_start" ;;
esac
# shellcheck disable=SC2206 # ExecStart= is split on blanks, as systemd does without quotes
cmd=($exec_start "$@")

is_yes() {
    case "${1:-}" in
    1 | yes | true | on) return 0 ;;
    *) return 1 ;;
    esac
}

user=${one[User]:-root}
group=${one[Group]:-}
getent passwd "$user" >/dev/null || die "User=$user does not exist"
if [ -z "$group" ]; then
    group=$(id -gn "$user")
fi
getent group "$group" >/dev/null || die "Group=$group does not exist"
home=$(getent passwd "$user" | cut -d: -f6)
shell=$(getent passwd "$user" | cut -d: -f7)

# ---- directories systemd makes before starting the process (owned by User=/Group=, except the
# configuration directory, which stays root's).
rw_dirs=()
env_dirs=()
make_dirs() {
    local base=$1 owned=$2 mode=$3 var=$4 names=$5 paths="" n
    for n in $names; do
        install -d -m "$mode" "$base/$n"
        if [ "$owned" = 1 ]; then
            chown "$user:$group" "$base/$n"
            rw_dirs+=("$base/$n")
        fi
        paths="${paths:+$paths:}$base/$n"
    done
    if [ -n "$paths" ]; then
        env_dirs+=("$var=$paths")
    fi
}
make_dirs /var/lib 1 "${one[StateDirectoryMode]:-0755}" STATE_DIRECTORY "${list[StateDirectory]:-}"
make_dirs /run 1 "${one[RuntimeDirectoryMode]:-0755}" RUNTIME_DIRECTORY \
    "${list[RuntimeDirectory]:-}"
make_dirs /etc 0 "${one[ConfigurationDirectoryMode]:-0755}" CONFIGURATION_DIRECTORY \
    "${list[ConfigurationDirectory]:-}"

# ---- capabilities, in setpriv's words: CAP_SYS_PTRACE -> +sys_ptrace
caps_arg() {
    local out=-all c
    for c in $1; do
        c=${c,,}
        out="$out,+${c#cap_}"
    done
    echo "$out"
}
setpriv_args=(--reuid "$user" --regid "$group" --init-groups)
if [ -n "${seen[CapabilityBoundingSet]:-}" ]; then
    setpriv_args+=(--bounding-set "$(caps_arg "${list[CapabilityBoundingSet]:-}")")
fi
if [ -n "${list[AmbientCapabilities]:-}" ]; then
    amb=$(caps_arg "${list[AmbientCapabilities]}")
    setpriv_args+=(--inh-caps "$amb" --ambient-caps "$amb")
fi
if is_yes "${one[NoNewPrivileges]:-}"; then
    setpriv_args+=(--no-new-privs)
fi

# ---- the file-system view, built in a private mount namespace (undone when the process exits)
ro_paths=()
case "${one[ProtectSystem]:-no}" in
strict) ro_paths+=(/) ;;
full) ro_paths+=(/usr /boot /efi /etc) ;;
yes | true | 1) ro_paths+=(/usr /boot /efi) ;;
esac
hide_paths=()
case "${one[ProtectHome]:-no}" in
read-only) ro_paths+=(/home /root /run/user) ;;
yes | true | 1 | tmpfs) hide_paths+=(/home /root /run/user) ;;
esac
api_fs_writable=1
if is_yes "${one[ProtectKernelTunables]:-}" || is_yes "${one[ProtectControlGroups]:-}"; then
    api_fs_writable=0
fi

# shellcheck disable=SC2016 # expanded by the inner shell
mount_script='
set -euo pipefail
mount --make-rprivate /
is_rw() { local p; for p in $RW; do [ "$1" = "$p" ] && return 0; done; return 1; }
if [ "$PRIVATE_TMP" = 1 ]; then
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
fi
for p in $HIDE; do
    [ -d "$p" ] && mount -t tmpfs -o mode=0755,nosuid,nodev,ro tmpfs "$p"
done
for p in $RW; do mount --bind "$p" "$p"; done
for p in $RO; do
    [ -d "$p" ] || continue
    mountpoint -q "$p" || mount --bind "$p" "$p"
    # every mount at or below p, deepest last; API file systems stay as they are
    awk -v p="$p" '"'"'{ m = $5; gsub(/\\040/, " ", m);
        if (m == p || p == "/" || index(m, p "/") == 1) print m }'"'"' /proc/self/mountinfo |
    while IFS= read -r m; do
        case "$m" in /proc | /proc/* | /dev | /dev/* | /sys | /sys/*) continue ;; esac
        if [ "$PRIVATE_TMP" = 1 ] && { [ "$m" = /tmp ] || [ "$m" = /var/tmp ]; }; then continue; fi
        is_rw "$m" && continue
        mount -o remount,bind,ro "$m"
    done
done
if [ "$API_RW" = 0 ]; then
    mount --bind /proc/sys /proc/sys
    mount -o remount,bind,ro /proc/sys
    mount -o remount,bind,ro /sys
fi
# From here on this shell is the service: its pid is the main pid.
envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "HOME=$SVC_HOME"
      "USER=$SVC_USER" "LOGNAME=$SVC_USER" "SHELL=$SVC_SHELL" "INVOCATION_ID=$SVC_INVOCATION"
      "SYSTEMD_EXEC_PID=$$")
[ -n "${LANG:-}" ] && envs+=("LANG=$LANG")
for v in NOTIFY_SOCKET JOURNAL_STREAM; do
    [ -n "${!v:-}" ] && envs+=("$v=${!v}")
done
if [ -n "${WATCHDOG_USEC:-}" ]; then envs+=("WATCHDOG_USEC=$WATCHDOG_USEC" "WATCHDOG_PID=$$"); fi
if [ -n "${LISTEN_FDS:-}" ]; then
    envs+=("LISTEN_FDS=$LISTEN_FDS" "LISTEN_PID=$$")
    [ -n "${LISTEN_FDNAMES:-}" ] && envs+=("LISTEN_FDNAMES=$LISTEN_FDNAMES")
fi
read -r -a dirs <<<"$SVC_DIR_ENV"
envs+=("${dirs[@]}")
cd "$SVC_WORKDIR"
exec setpriv "${SETPRIV[@]}" env -i "${envs[@]}" "${CMD[@]}"
'

umask "${one[UMask]:-0022}"
if [ -n "${one[LimitNOFILE]:-}" ]; then
    # Raising the hard limit needs CAP_SYS_RESOURCE, which a container may not have: then the
    # unit gets what this host allows, and says so.
    if ! ulimit -n "${one[LimitNOFILE]}" 2>/dev/null; then
        echo "as-unit: LimitNOFILE=${one[LimitNOFILE]} not possible here; using $(ulimit -Hn)" >&2
        ulimit -Sn "$(ulimit -Hn)"
    fi
fi
workdir=${one[WorkingDirectory]:-/}
[ "$workdir" = "~" ] && workdir=$home
exec </dev/null

# The inner shell gets its arrays through declare -p (no word splitting of arguments).
inner="$(declare -p cmd | sed 's/^declare -a cmd=/CMD=/')
$(declare -p setpriv_args | sed 's/^declare -a setpriv_args=/SETPRIV=/')
$mount_script"
export RW="${rw_dirs[*]}" RO="${ro_paths[*]}" HIDE="${hide_paths[*]}"
export PRIVATE_TMP=0 API_RW=$api_fs_writable
if is_yes "${one[PrivateTmp]:-}"; then
    PRIVATE_TMP=1
fi
export SVC_HOME=$home SVC_USER=$user SVC_SHELL=$shell SVC_WORKDIR=$workdir
export SVC_INVOCATION
SVC_INVOCATION=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export SVC_DIR_ENV="${env_dirs[*]}"
exec unshare --mount --propagation private -- bash -c "$inner"
