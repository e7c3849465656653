#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test twice — in a normal
# (gcc, optimised) build and in an AddressSanitizer + UndefinedBehaviorSanitizer build (clang,
# which also runs each libFuzzer target briefly). Benchmarks are not run here (ctest -L bench).
# Usage (as root on Debian 12): bash tests/run.sh
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

bash packaging/deps.sh

jobs=$(nproc)
run_suite() {
    local dir=$1
    shift
    echo "==> configure $dir ($*)"
    cmake -S . -B "$dir" "$@" >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }
    echo "==> build $dir"
    cmake --build "$dir" -j "$jobs"
    echo "==> test $dir"
    (cd "$dir" && ctest --output-on-failure --no-tests=error -LE bench -j "$jobs")
}

mkdir -p build build-asan
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc
run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
    -DCOLLECTORD_SANITIZE=ON -DCOLLECTORD_FUZZ=ON
echo "==> all tests passed in both builds"
