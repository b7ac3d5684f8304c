#!/usr/bin/env bash
# A password flood from one address must not slow everyone else's login
# (issue 13, item 4).
#
#   cargo build --release && bash bench/flood.sh
#
# Starts `rampart serve --demo` from a release build on a free loopback port
# in a temp dir, with user `alice` (an ed25519 key, permitted on the demo
# target), and measures what a person notices: the wall time of
#     ssh -i alice_key alice@127.0.0.1 demo echo ok
# (a key login, a session on the demo target, exit status 0), first unloaded
# and then while CLIENTS paramiko clients (bench/flood.py) try wrong passwords
# from 127.0.0.2 for SECONDS. While the flood runs it also checks that the
# rest of the bastion keeps working: a permission added with the CLI reaches
# the running server (bob's `demo echo ok` starts to work) and the login log
# can be read. It prints the medians, their ratio (the aim is <= 2x), the
# bastion's resident memory before, during (peak), right after and IDLE
# seconds after the flood, and the flooders' counts.
#
# Tunables (environment): RAMPART (binary), CLIENTS (60, at most 500),
# SECONDS_FLOOD (20, at most 300), RUNS (unloaded runs, 7), IDLE (15),
# LOCKOUT (off: limits raised so every attempt needs a password check, the
# worst case; default: the shipped limits, the address locks after 20
# failures), NICE (19: the flooders run niced so that the figure measures the
# bastion, not the CPU the attacker's Python burns on the same machine; 0 to
# compete on equal terms), KEEP_TMP=1 keeps the temp dir.
set -euo pipefail
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RAMPART=${RAMPART:-$REPO/target/release/rampart}
CLIENTS=${CLIENTS:-60}
SECONDS_FLOOD=${SECONDS_FLOOD:-20}
RUNS=${RUNS:-7}
IDLE=${IDLE:-15}
LOCKOUT=${LOCKOUT:-off}
NICE=${NICE:-19}
SOURCE=127.0.0.2

log() { printf '[flood %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -x $RAMPART ]] || die "$RAMPART not found: run 'cargo build --release' first"
for tool in ssh ssh-keygen python3 timeout awk sort; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
python3 -c 'import paramiko' 2>/dev/null || die "paramiko not found: pip install paramiko"
((CLIENTS >= 1 && CLIENTS <= 500)) || die "CLIENTS must be 1..500"
((SECONDS_FLOOD >= 5 && SECONDS_FLOOD <= 300)) || die "SECONDS_FLOOD must be 5..300"
((RUNS >= 1 && RUNS <= 50)) || die "RUNS must be 1..50"
((IDLE >= 0 && IDLE <= 300)) || die "IDLE must be 0..300"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rampart-flood.XXXXXX")
PID=""
FLOOD_PID=""
cleanup() {
    local status=$? i
    set +e
    [[ -n $FLOOD_PID ]] && kill -- "$FLOOD_PID" 2>/dev/null
    if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID"
        for ((i = 0; i < 50; i++)); do
            kill -0 "$PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$PID" 2>/dev/null
    fi
    wait 2>/dev/null
    if [[ -n ${KEEP_TMP:-} ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
    exit "$status"
}
trap cleanup EXIT INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export RAMPART_CONFIG=$TMP/rampart.toml
{
    printf 'data_dir = "%s/data"\n\n[ssh]\nlisten = ["127.0.0.1:%s"]\n' "$TMP" "$PORT"
    if [[ $LOCKOUT == off ]]; then
        printf '\n[auth]\nmax_failures = 1000\nmax_failures_per_address = 100000\n'
    fi
} >"$RAMPART_CONFIG"
cli() { "$RAMPART" "$@" >>"$TMP/cli.log" 2>&1; }
for who in alice bob; do
    ssh-keygen -q -t ed25519 -N '' -f "$TMP/${who}_key"
done
cli init || die "init failed: $(tail -3 "$TMP/cli.log")"
cli user add alice --key-file "$TMP/alice_key.pub" || die "user add failed"
cli user add bob --key-file "$TMP/bob_key.pub" || die "user add failed"
"$RAMPART" serve --demo >"$TMP/serve.log" 2>&1 &
PID=$!
for _ in $(seq 200); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
for _ in $(seq 100); do "$RAMPART" asset show demo >/dev/null 2>&1 && break; sleep 0.1; done
cli perm add alice-demo --user alice --asset demo || die "perm add failed: $(tail -3 "$TMP/cli.log")"

# One `demo echo ok` as WHO: prints milliseconds, or FAIL.
legit() {
    local who=$1 start end
    start=$EPOCHREALTIME
    if timeout 60 ssh -p "$PORT" -i "$TMP/${who}_key" -o IdentitiesOnly=yes \
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
        -o BatchMode=yes -o PreferredAuthentications=publickey \
        "$who@127.0.0.1" demo echo ok </dev/null >/dev/null 2>>"$TMP/ssh.err"; then
        end=$EPOCHREALTIME
        awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f\n", (b - a) * 1000 }'
    else
        echo FAIL
    fi
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status"; }
median() { grep -v FAIL | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "n/a" }'; }
max() { grep -v FAIL | sort -n | tail -1; }

# The permission reaches the server through its change watcher (~1 s).
for _ in $(seq 50); do [[ $(legit alice) != FAIL ]] && break; sleep 0.2; done
[[ $(legit alice) != FAIL ]] || die "alice cannot run 'demo echo ok': $(tail -3 "$TMP/ssh.err")"

: >"$TMP/unloaded"
for _ in $(seq "$RUNS"); do legit alice >>"$TMP/unloaded"; done
sleep 2
RSS_BEFORE=$(rss_kib)

log "flooding: $CLIENTS clients from $SOURCE for ${SECONDS_FLOOD}s (lockout $LOCKOUT, nice $NICE)"
nice -n "$NICE" python3 "$REPO/bench/flood.py" 127.0.0.1 "$PORT" --source "$SOURCE" \
    --clients "$CLIENTS" --seconds "$SECONDS_FLOOD" >"$TMP/flood.out" 2>"$TMP/flood.err" &
FLOOD_PID=$!
FLOOD_END=$((SECONDS + SECONDS_FLOOD))
RSS_PEAK=$RSS_BEFORE
peak() { local r; r=$(rss_kib); ((r > RSS_PEAK)) && RSS_PEAK=$r; return 0; }
sleep 3
peak
: >"$TMP/loaded"
POLICY=n/a
AUDIT=n/a
while ((SECONDS < FLOOD_END - 1)); do
    legit alice >>"$TMP/loaded"
    peak
    if [[ $POLICY == n/a ]] && ((SECONDS >= FLOOD_END - SECONDS_FLOOD / 2)); then
        # A policy change through the CLI mid-flood: bob may use demo from now.
        t0=$EPOCHREALTIME
        if ! "$RAMPART" perm add bob-demo --user bob --asset demo >"$TMP/perm.out" 2>&1; then
            POLICY="perm add FAILED after $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }'): $(tail -1 "$TMP/perm.out")"
        else
            POLICY="FAIL (bob still refused after 10 s)"
            for _ in $(seq 50); do
                if [[ $(legit bob) != FAIL ]]; then
                    POLICY=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }')
                    break
                fi
                sleep 0.2
            done
        fi
        t0=$EPOCHREALTIME
        n=$(timeout 30 "$RAMPART" audit logins --since 10m --json 2>/dev/null | wc -l) || n=FAIL
        AUDIT="$n rows in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f s", b - a }')"
    fi
done
wait "$FLOOD_PID" || true
FLOOD_PID=""
peak
RSS_AFTER=$(rss_kib)
sleep "$IDLE"
RSS_IDLE=$(rss_kib)

UNLOADED=$(median <"$TMP/unloaded")
LOADED=$(median <"$TMP/loaded")
FAILED=$(grep -c FAIL "$TMP/loaded" || true)
mib() { awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'; }
echo "rampart password flood  ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "flood: $CLIENTS paramiko clients from $SOURCE for ${SECONDS_FLOOD}s, lockout $LOCKOUT, flooders at nice $NICE"
echo "flooders: $(cat "$TMP/flood.out" 2>/dev/null || echo '?')"
printf '%-44s %s\n' "alice 'demo echo ok' unloaded (median of $RUNS)" "$UNLOADED ms"
printf '%-44s %s\n' "alice 'demo echo ok' under flood (median of $(wc -l <"$TMP/loaded"))" "$LOADED ms (max $(max <"$TMP/loaded") ms, $FAILED failed)"
if [[ $UNLOADED != n/a && $LOADED != n/a ]]; then
    printf '%-44s %s\n' "ratio (aim <= 2)" "$(awk -v a="$LOADED" -v b="$UNLOADED" 'BEGIN { printf "%.2f", a / b }')"
fi
printf '%-44s %s\n' "perm add mid-flood -> bob's login works" "$POLICY"
printf '%-44s %s\n' "audit logins read mid-flood" "$AUDIT"
printf '%-44s %s\n' "RSS before / peak / after / after ${IDLE}s idle" \
    "$(mib "$RSS_BEFORE") / $(mib "$RSS_PEAK") / $(mib "$RSS_AFTER") / $(mib "$RSS_IDLE")"
