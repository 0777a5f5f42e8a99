#!/bin/sh
# Build an example Go function into a Lambda zip (a "bootstrap" for provided.al2023), as the
# tests, the demo and a user would:
#
#   examples/build.sh OUT.zip [FLAVOR] [PACKAGE]
#
# FLAVOR (default "good") is baked in with -ldflags, so each flavour has its own CodeSha256;
# PACKAGE defaults to ./examples/hello. The zip is reproducible: same inputs, same bytes.
# GOOS/GOARCH default to this machine's, so the sandbox can run the function here; set
# GOOS=linux GOARCH=arm64 (or amd64) for real AWS.
set -eu
out=${1:?usage: examples/build.sh OUT.zip [FLAVOR] [PACKAGE]}
flavor=${2:-good}
pkg=${3:-./examples/hello}
root=$(cd "$(dirname "$0")/.." && pwd)
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -buildvcs=false \
	-ldflags "-s -w -buildid= -X main.flavor=$flavor" -o "$tmp/bootstrap" "$pkg"
go run ./cmd/aviary package --zip "$out" "$tmp/bootstrap"
