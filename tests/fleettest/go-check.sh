#!/usr/bin/env bash
# Source hygiene for the Go test fleet: gofmt-clean and go vet-clean. Usage: go-check.sh GO DIR
set -euo pipefail
go=$1
cd "$2"
gofmt=$(dirname "$(readlink -f "$go")")/gofmt
unformatted=$("$gofmt" -l .)
if [ -n "$unformatted" ]; then
    echo "error: not gofmt-clean (run: gofmt -w tests/fleet): $unformatted" >&2
    exit 1
fi
GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local "$go" vet .
