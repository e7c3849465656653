#!/usr/bin/env bash
# Installs every package collectord needs to build, test and benchmark on Debian 12, with apt-get.
# Idempotent: checks what is installed first and does nothing (quickly) when all is present.
# Usage (as root): bash packaging/deps.sh
set -euo pipefail

packages=(
    # build
    cmake make gcc pkg-config
    libcurl4-openssl-dev  # scrapers: libcurl multi-socket API (OpenSSL flavour)
    libuv1-dev            # the event loop
    libsqlite3-dev        # storage
    libprotobuf-c-dev protobuf-c-compiler  # pprof decoding (profile.proto compiled with protoc-c)
    libyaml-dev           # config
    libjansson-dev        # JSON: summaries, query API
    libmicrohttpd-dev     # query socket server
    libdeflate-dev        # gzip (profiles, incident bundles)
    libzstd-dev           # compression of stored text and traces
    libsystemd-dev        # sd_notify, watchdog, socket activation
    libssl-dev            # SHA-256 content hashes (libcrypto)
    # tests
    libcmocka-dev         # unit test framework
    golang-go             # builds the Go test fleet; `go tool pprof` checks our figures
    clang libclang-rt-14-dev  # the ASan+UBSan build and libFuzzer targets
    sqlite3               # integrity checks from tests
    systemd               # systemd-analyze verify/security on the units, systemd-sysusers
    shellcheck            # the package's maintainer scripts and our shell scripts (tests/packaging)
    dpkg-dev              # building the .deb (CPack) and dpkg-shlibdeps
    golang-github-google-pprof-dev  # the peer our parser benchmark measures against
    ca-certificates
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "collectord: missing packages: ${missing[*]}" >&2
    echo "run as root: apt-get install ${missing[*]}" >&2
    exit 1
fi

echo "collectord: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
