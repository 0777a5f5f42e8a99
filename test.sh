#!/bin/sh
# Runs every Aviary test. First installs, when missing, what the tests drive for real:
#   - Debian's awscli (a real AWS client, checked against the sandbox), with its botocore data;
#   - dynalite from npm (a DynamoDB-compatible server for the team store; the tests start and stop it);
#   - Debian's chromium and npm's playwright-core (the browser test opens an approval link in it).
# Needs Go; installing uses apt-get (as root, or through sudo) and npm.
set -eu
cd "$(dirname "$0")"

# apt_get waits up to two minutes for dpkg's lock when another process holds it (an install in
# another shell, unattended-upgrades) instead of failing at once.
apt_get() {
	$sudo env DEBIAN_FRONTEND=noninteractive LC_ALL=C apt-get -o DPkg::Lock::Timeout=120 "$@"
}

# update_waiting runs apt-get update, waiting up to two minutes for the lock of apt's lists: the
# DPkg::Lock::Timeout option does not cover that lock (apt 2.6 fails at once), so update is tried
# again while apt says another process holds it.
update_waiting() {
	deadline=$(($(date +%s) + 120))
	waiting=""
	while :; do
		if out=$(apt_get update -q 2>&1); then
			printf '%s\n' "$out" >&2
			return 0
		fi
		case $out in
		*"Could not get lock"*) ;;
		*)
			printf '%s\n' "$out" >&2
			return 1
			;;
		esac
		if [ "$(date +%s)" -ge "$deadline" ]; then
			printf '%s\n' "$out" >&2
			echo "test.sh: apt's lists were still locked after two minutes" >&2
			return 1
		fi
		if [ -z "$waiting" ]; then
			echo "test.sh: another process holds apt's lock; waiting up to two minutes" >&2
			waiting=1
		fi
		sleep 3
	done
}

missing=""
[ -x /usr/bin/aws ] || missing="$missing awscli"
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
if [ -n "$missing" ]; then
	echo "test.sh: installing$missing" >&2
	if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
	update_waiting
	apt_get install -y -q --no-install-recommends $missing >&2
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

# A short run of every fuzz target (a few thousand inputs each, on top of their seed corpora, which
# go test above already ran). Longer runs: the same with -fuzztime 10m (see README, Fuzzing).
if [ "$#" -eq 0 ]; then
	echo "test.sh: fuzz (short)" >&2
	for target in manifest:FuzzParse links:FuzzVerify links:FuzzSignVerify sandbox/logs:FuzzFilterPattern \
		sandbox/protocol:FuzzQuery sandbox/protocol:FuzzJSON sandbox/protocol:FuzzRESTJSON sandbox/protocol:FuzzCBOR; do
		go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime 2000x -parallel 1 "./${target%%:*}"
	done
fi
