#!/usr/bin/env bash
# Static checks of what packaging/ ships, fast enough for every run:
#   - the maintainer scripts are POSIX sh (dpkg runs them with /bin/sh) and pass shellcheck, as do
#     the bash scripts (deps.sh, run-demo.sh, the test's as-unit.sh);
#   - the service's hardening does not regress: `systemd-analyze security` exposure stays at or
#     below 2.5 (0 = fully locked down, 10 = nothing); today it is 2.3, the rest being what
#     collectord needs (network, the two capabilities of local discovery, /proc);
#   - the units name exactly the paths the daemon and the package use.
# Usage: check-packaging.sh SOURCE_DIR
set -euo pipefail
top=${1:?usage: check-packaging.sh SOURCE_DIR}
pkg=$top/packaging
status=0
fail() {
    echo "check-packaging: $*" >&2
    status=1
}

if command -v shellcheck >/dev/null 2>&1; then
    shellcheck -s sh "$pkg/postinst" "$pkg/prerm" "$pkg/postrm" || fail "shellcheck: maintainer scripts"
    shellcheck "$pkg/deps.sh" "$pkg/run-demo.sh" "$top/tests/packaging/as-unit.sh" \
        "$top/tests/packaging/systemd-check.sh" ||
        fail "shellcheck: bash scripts"
else
    fail "shellcheck is missing (bash packaging/deps.sh installs it)"
fi
for s in postinst prerm postrm; do
    [ "$(head -n 1 "$pkg/$s")" = "#!/bin/sh" ] || fail "$s must start with #!/bin/sh"
    [ -x "$pkg/$s" ] || fail "$s must be executable (dpkg runs it directly)"
done

if ! out=$(systemd-analyze security --offline=true --threshold=25 "$pkg/collectord.service" 2>&1); then
    echo "$out" | grep -v '✓' >&2
    fail "collectord.service: exposure above 2.5 (see the ✗ lines above)"
fi

grep -qx 'ExecStart=/usr/bin/collectord -c /etc/collectord/collectord.yaml' \
    "$pkg/collectord.service" || fail "collectord.service: ExecStart= changed"
grep -qx 'ListenStream=/run/collectord/collectord.sock' "$pkg/collectord.socket" ||
    fail "collectord.socket: not the default query socket"
grep -q '^  socket: /run/collectord/collectord.sock$' "$top/config/collectord.yaml" ||
    fail "config/collectord.yaml: query.socket is not the socket unit's"
grep -q '^  path: /var/lib/collectord/collectord.db$' "$top/config/collectord.yaml" ||
    fail "config/collectord.yaml: storage.path is not under StateDirectory="
grep -qx '/etc/collectord/collectord.yaml' "$pkg/conffiles.in" || fail "conffiles: the config is missing"
exit $status
