#!/usr/bin/env bash
# Source hygiene for collectord's own C: unsafe libc calls are banned, and every file must match
# .clang-format. Usage: check-sources.sh SOURCE_DIR
set -euo pipefail
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top"
mapfile -t files < <(find daemon include tests -name '*.c' -o -name '*.h' | grep -v '/fleet/' | sort)
status=0
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|atoll|strtok|strncpy|tmpnam|mktemp)[[:space:]]*\('
if grep -nE "$banned" "${files[@]}" | grep -v 'check-sources: allow'; then
    echo "error: banned libc calls above (use the cd_str_* helpers, snprintf, strtok_r, mkstemp)" >&2
    status=1
fi
if command -v clang-format >/dev/null 2>&1; then
    if ! clang-format --dry-run -Werror "${files[@]}" 2>/tmp/cd-format.$$; then
        head -40 /tmp/cd-format.$$ >&2
        echo "error: files above differ from .clang-format (run: clang-format -i FILE)" >&2
        status=1
    fi
    rm -f /tmp/cd-format.$$
fi
exit $status
