#!/usr/bin/env bash
# The man pages render without warnings, name every collectorctl command, and the bash
# completion offers the same commands and completes what it should.
# Usage: check-docs.sh SOURCE_DIR COLLECTORCTL
set -euo pipefail
src=$1
ctl=$2
status=0
fail() {
    echo "check-docs: $*" >&2
    status=1
}

if command -v groff >/dev/null 2>&1; then
    for page in "$src/packaging/collectord.8" "$src/packaging/collectorctl.1"; do
        out=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || fail "groff failed on $page"
        [[ -z $out ]] || fail "groff warnings on $page: $out"
    done
fi

commands=$("$ctl" --help | awk '/^commands:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
[[ -n $commands ]] || fail "collectorctl --help lists no commands"
# shellcheck source=/dev/null
source "$src/packaging/collectorctl.bash-completion"
complete_words() {
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _collectorctl
    echo "${COMPREPLY[*]}"
}
all=" $(complete_words collectorctl '') "
for c in $commands; do
    grep -q "^\.B $c\b" "$src/packaging/collectorctl.1" || fail "collectorctl.1 does not describe '$c'"
    [[ $all == *" $c "* ]] || fail "the completion does not offer '$c'"
done
for c in $all; do
    grep -qx "$c" <<<"$commands" || fail "the completion offers '$c', which collectorctl lacks"
done
[[ $(complete_words collectorctl sn) == snapshots ]] || fail "completing 'sn'"
[[ $(complete_words collectorctl -s /tmp/x.sock capture --kind gorou) == "goroutine goroutine_dump" ]] ||
    fail "completing --kind"
[[ $(complete_words collectorctl -o '') == "table json" ]] || fail "completing -o"
got=" $(complete_words collectorctl show 12 --) "
[[ $got == *" --sample-type "* && $got == *" --help "* ]] || fail "completing show options: $got"
[[ $(complete_words collectorctl list --health d) == down ]] || fail "completing --health"
exit $status
