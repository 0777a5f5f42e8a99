#!/bin/sh
# Runs every Aviary test. First installs, when missing, what the tests drive for real:
#   - Debian's awscli (a real AWS client, checked against the sandbox), with its botocore data;
#   - dynalite from npm (a DynamoDB-compatible server for the team store; the tests start and stop it);
#   - Debian's chromium and npm's playwright-core (the browser test opens an approval link in it).
# Needs Go; installing uses apt-get (as root, or through sudo) and npm.
set -eu
cd "$(dirname "$0")"

missing=""
[ -x /usr/bin/aws ] || missing="$missing awscli"
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
if [ -n "$missing" ]; then
	echo "test.sh: installing$missing" >&2
	if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
	$sudo apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing >&2
fi

if [ ! -x node_modules/.bin/dynalite ] || [ ! -d node_modules/playwright-core ]; then
	echo "test.sh: installing dynalite and playwright-core (npm ci)" >&2
	npm ci --no-audit --no-fund >&2
fi

echo "test.sh: go vet" >&2
go vet ./...
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "test.sh: gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
echo "test.sh: go test" >&2
go test -count=1 -timeout 25m "$@" ./...
