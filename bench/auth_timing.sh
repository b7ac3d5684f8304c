#!/usr/bin/env bash
# How long rampart takes to reject a wrong password for a user that exists
# and for a name that does not: the two must not be told apart by timing
# (issue 6, security checks). Runs `rampart serve` on a free loopback port
# in a temp dir and times N password attempts of each kind with OpenSSH's
# ssh (password via SSH_ASKPASS), alternating, in one run.
#
#   RAMPART=target/release/rampart N=30 bash bench/auth_timing.sh
#
# Prints the median and p90 of each kind in ms and their ratio. Lockouts
# are raised out of the way (auth.max_failures) so that every attempt runs
# the full check.
set -euo pipefail
export LC_ALL=C
RAMPART=${RAMPART:-target/release/rampart}
N=${N:-30}
[[ -x $RAMPART ]] || { echo "build it first: cargo build --release" >&2; exit 1; }
command -v ssh >/dev/null || { echo "install openssh-client" >&2; exit 1; }
TMP=$(mktemp -d)
PID=""
cleanup() { [[ -n $PID ]] && kill "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export RAMPART_CONFIG=$TMP/rampart.toml
cat >"$RAMPART_CONFIG" <<CONF
data_dir = "$TMP/data"

[ssh]
listen = ["127.0.0.1:$PORT"]

[auth]
max_failures = 1000
max_failures_per_address = 1000
CONF
"$RAMPART" init >"$TMP/cli.log" 2>&1
printf 'the right one for known\n' | "$RAMPART" user add known --password-stdin >>"$TMP/cli.log" 2>&1
"$RAMPART" serve >"$TMP/serve.log" 2>&1 &
PID=$!
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
printf '#!/bin/sh\necho wrong-password\n' >"$TMP/askpass"
chmod +x "$TMP/askpass"
attempt() { # USER -> milliseconds
    local start end
    start=$EPOCHREALTIME
    SSH_ASKPASS=$TMP/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=none \
        ssh -p "$PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o PreferredAuthentications=password -o PubkeyAuthentication=no \
        -o NumberOfPasswordPrompts=1 -o LogLevel=ERROR "$1@127.0.0.1" true </dev/null >/dev/null 2>&1 || true
    end=$EPOCHREALTIME
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }'
}
: >"$TMP/known"; : >"$TMP/unknown"
for _ in $(seq "$N"); do
    attempt known >>"$TMP/known"
    attempt "nobody-$RANDOM" >>"$TMP/unknown"
done
stats() { sort -n "$1" | awk '{ v[NR] = $1 } END { printf "%.1f %.1f", v[int((NR + 1) / 2)], v[int(NR * 0.9 + 0.5)] }'; }
read -r km kp <<<"$(stats "$TMP/known")"
read -r um up <<<"$(stats "$TMP/unknown")"
printf '%-28s %10s %10s\n' "rejected password ($N each)" "median ms" "p90 ms"
printf '%-28s %10s %10s\n' "known user, wrong password" "$km" "$kp"
printf '%-28s %10s %10s\n' "unknown user" "$um" "$up"
awk -v k="$km" -v u="$um" 'BEGIN { printf "unknown / known (median): %.3f\n", u / k }'
