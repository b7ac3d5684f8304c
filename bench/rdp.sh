#!/usr/bin/env bash
# RDP through rampart (issue 17), with real peers on loopback: a
# freerdp-shadow-cli target serving an Xvfb desktop that repaints itself
# REPAINTS times a second (the whole screen changes colour: the heaviest
# plain-bitmap stream a desktop sends), and SESSIONS xfreerdp clients, each
# on its own Xvfb, connected through rampart's RDP front with tickets asked
# for over SSH. Prints one table:
#
#   - bytes relayed to the clients, and rampart's CPU per MB of them, with
#     the share of it spent by the recorder threads (rampart-record);
#   - the same stream straight from the target, for the clients' side;
#   - rampart's resident memory idle, with SESSIONS desktops, and after;
#   - the relay's own time per batch of PDUs (rampart_rdp_relay_seconds),
#     median and 99th percentile, each way, while xdotool types into every
#     client (up: the person's keys to the target; down: the target's
#     updates to the person, recording included): what the relay adds to
#     an input's round trip, besides one more loopback hop;
#   - the recordings' size on disk per MB relayed;
#   - decoding the recording back: `export --format png` of its end and
#     `--format gif` of all of it, the half-block replay of the whole
#     recording (pictures per second), and the audit view's player:
#     playing it through, seeking back, a fresh seek to the end.
#
#   bash bench/rdp.sh                          # 1920x1080, 4 sessions, 20 s
#   SIZE=1280x720 SESSIONS=8 SECONDS_PER_RUN=30 REPAINTS=10 bash bench/rdp.sh
#   PERF=/tmp/rdp.perf bash bench/rdp.sh       # also `perf record` rampart
#                                              # while the sessions run
#   KEEP=/tmp/rdp-recordings bash bench/rdp.sh # keep the recordings there
#
# Last, a key's round trip as the client sees it, straight to the target and
# through rampart (KEYS keys each, 4 a second; bench/rdp_rtt.py times them
# in front of the client, bench/rdp_keys.py is the window on the target
# that answers each key with a repaint). The target's own capture interval
# is in both; the difference of the medians is what rampart adds.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-1920x1080}
SESSIONS=${SESSIONS:-4}
RUN=${SECONDS_PER_RUN:-20}
REPAINTS=${REPAINTS:-5}
KEYS=${KEYS:-120}
PASSWORD=Bench-Target-1

die() {
    echo "bench/rdp.sh: $*" >&2
    exit 1
}
for p in Xvfb xsetroot xdotool winpr-hash freerdp-shadow-cli xfreerdp ssh ssh-keygen python3; do
    command -v "$p" >/dev/null || die "$p is missing (apt install freerdp2-shadow-x11 freerdp2-x11 winpr-utils xvfb x11-xserver-utils xdotool openssh-client)"
done

cargo build --release -q
RAMPART=$PWD/target/release/rampart
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rampart-rdp-bench.XXXXXX")
PIDS=()
cleanup() {
    # Xvfb is started inside $(...): its pid comes back through a file.
    for f in "$TMP"/display.*.pid; do [[ -e $f ]] && PIDS+=("$(cat "$f")"); done
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    if [[ -n ${KEEP:-} && -d $TMP/data/recordings ]]; then
        mkdir -p "$KEEP" && cp -r "$TMP/data/recordings/." "$KEEP/"
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # PORT SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
# An Xvfb of SIZE; prints its display number.
xvfb() { # SIZE NAME
    local out=$TMP/display.$2
    Xvfb -displayfd 1 -screen 0 "${1}x24" -nolisten tcp -noreset -br >"$out" 2>/dev/null &
    echo $! >"$out.pid"
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s $out ]] && break
        sleep 0.1
    done
    [[ -s $out ]] || die "Xvfb did not start"
    head -1 "$out"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
# CPU ticks of a process's threads named NAME (still running).
thread_ticks() { # PID NAME
    local total=0 t
    for t in /proc/"$1"/task/*; do
        [[ $(cat "$t/comm" 2>/dev/null) == "$2" ]] || continue
        total=$((total + $(awk '{ print $14 + $15 }' "$t/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
HZ=$(getconf CLK_TCK)

# The target: a desktop that repaints itself, shared by freerdp-shadow-cli.
TARGET_DISPLAY=$(xvfb "$SIZE" target)
winpr-hash -u Administrator -p "$PASSWORD" -f sam >"$TMP/sam"
TARGET_PORT=$(free_port)
mkdir -p "$TMP/shadow"
DISPLAY=:$TARGET_DISPLAY HOME=$TMP/shadow XDG_CONFIG_HOME=$TMP/shadow \
    freerdp-shadow-cli "/port:$TARGET_PORT" /bind-address:127.0.0.1 /sec:nla "/sam-file:$TMP/sam" \
    >"$TMP/shadow.log" 2>&1 &
SHADOW_PID=$!
PIDS+=($SHADOW_PID)
wait_port "$TARGET_PORT" 10 || die "the shadow server did not listen"
half=$(python3 -c "print(1 / (2 * $REPAINTS))")
(while :; do
    DISPLAY=:$TARGET_DISPLAY xsetroot -solid '#3366cc'
    sleep "$half"
    DISPLAY=:$TARGET_DISPLAY xsetroot -solid '#cc6633'
    sleep "$half"
done) &
REPAINT_PID=$!
PIDS+=($REPAINT_PID)

# rampart with an RDP front; a person `bench` with an SSH key.
SSH_PORT=$(free_port)
RDP_PORT=$(free_port)
METRICS_PORT=$(free_port)
export RAMPART_CONFIG=$TMP/rampart.toml
cat >"$RAMPART_CONFIG" <<EOF
data_dir = "$TMP/data"
[ssh]
listen = ["127.0.0.1:$SSH_PORT"]
[rdp]
listen = ["127.0.0.1:$RDP_PORT"]
[http]
metrics_listen = "127.0.0.1:$METRICS_PORT"
EOF
ssh-keygen -q -t ed25519 -N '' -f "$TMP/key"
{
    "$RAMPART" init
    "$RAMPART" user add bench --key-file "$TMP/key.pub"
    "$RAMPART" asset add win --address 127.0.0.1 --protocol "rdp/$TARGET_PORT" --platform windows
    printf '%s\n' "$PASSWORD" | "$RAMPART" account add win Administrator --password-stdin
    "$RAMPART" perm add bench-win --user bench --asset win --actions connect
} >"$TMP/setup.log" 2>&1 || die "setup failed: $(tail -5 "$TMP/setup.log")"
"$RAMPART" serve >"$TMP/rampart.log" 2>&1 &
RAMPART_PID=$!
PIDS+=($RAMPART_PID)
wait_port "$RDP_PORT" 20 || die "rampart did not listen: $(tail -5 "$TMP/rampart.log")"
SSH=(ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
    -o LogLevel=ERROR -i "$TMP/key" -p "$SSH_PORT" bench@127.0.0.1)

# SESSIONS clients for RUN seconds (after a 5 s start), to ADDRESS with
# user/password pairs from a function; sets CPU_TICKS, RECORD_TICKS, PEAK_RSS.
clients() { # ADDRESS CREDENTIALS_FUNCTION MEASURE(0/1)
    local pids=() i user pass display
    local displays=()
    for ((i = 0; i < SESSIONS; i++)); do
        read -r user pass < <("$2")
        display=$(xvfb "$SIZE" "client.$i.$RANDOM")
        displays+=("$display")
        mkdir -p "$TMP/client.$i"
        DISPLAY=:$display HOME=$TMP/client.$i XDG_CONFIG_HOME=$TMP/client.$i \
            xfreerdp "/v:$1" "/u:$user" "/p:$pass" /cert:ignore -gfx /sec:nla \
            >>"$TMP/xfreerdp.log" 2>&1 &
        pids+=($!)
        PIDS+=($!)
    done
    sleep 5
    # The person types: five keys a second into each client, for the
    # relay's input times.
    for display in "${displays[@]}"; do
        (for ((k = 0; k < RUN * 5; k++)); do
            DISPLAY=:$display xdotool key --delay 0 a >/dev/null 2>&1 || true
            sleep 0.2
        done) &
        PIDS+=($!)
    done
    local cpu0 rec0 shadow0
    cpu0=$(cpu_ticks "$RAMPART_PID")
    shadow0=$(cpu_ticks "$SHADOW_PID")
    rec0=$(thread_ticks "$RAMPART_PID" rampart-record)
    PEAK_RSS=0
    local perf_pid=
    if [[ $3 == 1 && -n ${PERF:-} ]]; then
        perf record -q -F 999 -g -p "$RAMPART_PID" -o "$PERF" -- sleep "$RUN" &
        perf_pid=$!
    fi
    for ((i = 0; i < RUN; i++)); do
        sleep 1
        local r
        r=$(rss_kb "$RAMPART_PID")
        if ((r > PEAK_RSS)); then PEAK_RSS=$r; fi
    done
    CPU_TICKS=$(($(cpu_ticks "$RAMPART_PID") - cpu0))
    SHADOW_TICKS=$(($(cpu_ticks "$SHADOW_PID") - shadow0))
    RECORD_TICKS=$(($(thread_ticks "$RAMPART_PID" rampart-record) - rec0))
    [[ -z $perf_pid ]] || wait "$perf_pid" || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    RUNNING=0
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then RUNNING=$((RUNNING + 1)); fi
    done
}
direct() { echo "Administrator $PASSWORD"; }
ticket() {
    "${SSH[@]}" rampart rdp ticket win |
        awk '$1 == "user" { u = $2 } $1 == "password" { p = $2 } END { print u, p }'
}

# Direct first: the target's own cost for this stream.
clients "127.0.0.1:$TARGET_PORT" direct 0
DIRECT_SHADOW_TICKS=$SHADOW_TICKS
sleep 2
IDLE_RSS=$(rss_kb "$RAMPART_PID")
clients "127.0.0.1:$RDP_PORT" ticket 1
sleep 3
AFTER_RSS=$(rss_kb "$RAMPART_PID")
# The measured sessions' rows and recordings, before the round trips add
# theirs. (The relay times below include the round trips' keys.)
"$RAMPART" session list --json >"$TMP/sessions.json"
REC_BYTES=$(du -sb "$TMP/data/recordings" | awk '{ print $1 }')

# A key's round trip, as the client sees it: the repainting stops, a window
# that changes colour at each key fills the target's screen, and one client
# per path types KEYS keys through bench/rdp_rtt.py (a timing TCP relay in
# front of the client), straight to the target, then through rampart.
kill "$REPAINT_PID" 2>/dev/null || true
DISPLAY=:$TARGET_DISPLAY python3 bench/rdp_keys.py >/dev/null 2>&1 &
PIDS+=($!)
sleep 1
rtt() { # TARGET_PORT CREDENTIALS_FUNCTION NAME
    local port proxy display pid user pass k
    port=$(free_port)
    python3 bench/rdp_rtt.py "$port" "$1" "$TMP/rtt.$3" &
    proxy=$!
    PIDS+=($proxy)
    wait_port "$port" 5 || die "the timing relay did not listen"
    read -r user pass < <("$2")
    display=$(xvfb "$SIZE" "rtt.$3")
    mkdir -p "$TMP/rtt.$3.home"
    DISPLAY=:$display HOME=$TMP/rtt.$3.home XDG_CONFIG_HOME=$TMP/rtt.$3.home \
        xfreerdp "/v:127.0.0.1:$port" "/u:$user" "/p:$pass" /cert:ignore -gfx /sec:nla \
        >>"$TMP/xfreerdp.log" 2>&1 &
    pid=$!
    PIDS+=($pid)
    sleep 5
    for ((k = 0; k < KEYS; k++)); do
        DISPLAY=:$display xdotool key --delay 0 a >/dev/null 2>&1 || true
        sleep 0.25
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    kill -TERM "$proxy" 2>/dev/null || true
    wait "$proxy" 2>/dev/null || true
}
rtt "$TARGET_PORT" direct direct
rtt "$RDP_PORT" ticket rampart

python3 - "$METRICS_PORT" >"$TMP/relay_times.txt" <<'EOF'
# The relay's own time per batch, from rampart's histogram: median and
# 99th percentile, interpolated within the doubling buckets.
import re, sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode()
for direction in ("up", "down"):
    buckets = []
    for labels, n in re.findall(r'^rampart_rdp_relay_seconds_bucket\{([^}]*)\} (\S+)', text, re.M):
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if pairs.get("direction") == direction and pairs.get("le") != "+Inf":
            buckets.append((float(pairs["le"]), float(n)))
    buckets.sort()
    count = re.search(r'rampart_rdp_relay_seconds_count\{direction="%s"\} (\S+)' % direction, text)
    total = float(count.group(1)) if count else 0
    def quantile(q):
        below, low = 0.0, 0.0
        for le, n in buckets:
            if n >= q * total:
                return low + (le - low) * (q * total - below) / max(n - below, 1e-9)
            below, low = n, le
        return float("inf")
    if total:
        print(f"{direction} {int(total)} {quantile(0.5) * 1e6:.0f} {quantile(0.99) * 1e6:.0f}")
    else:
        print(f"{direction} 0 - -")
EOF
read -r BYTES DONE <<<"$(python3 - "$TMP/sessions.json" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rdp = [r for r in rows if r.get("protocol") == "rdp"]
print(sum(r.get("bytes_out", 0) for r in rdp), len([r for r in rdp if r.get("status") != "live"]))
EOF
)"
[[ $BYTES -gt 0 ]] || die "nothing was relayed: $(tail -5 "$TMP/xfreerdp.log")"
ID=$(python3 -c "
import json, sys
rows = [json.loads(l) for l in open('$TMP/sessions.json') if l.strip()]
print(max((r for r in rows if r.get('protocol') == 'rdp'), key=lambda r: r.get('bytes_out', 0))['id'])")
t0=$(date +%s.%N)
"$RAMPART" export "$ID" --format png -o "$TMP/end.png"
t1=$(date +%s.%N)
CAST=$(find "$TMP/data/recordings" -name "$ID.cast")
t2=$(date +%s.%N)
"$RAMPART" export "$ID" --format gif -o "$TMP/all.gif"
t3=$(date +%s.%N)
GIF_BYTES=$(stat -c %s "$TMP/all.gif")
REPLAY=$(cargo run --release -q --example desktop_replay -- "$CAST" 80 24)

MB=$(python3 -c "print($BYTES / 1e6)")
python3 - <<EOF
hz = $HZ
mb = $MB
cpu = $CPU_TICKS / hz
rec = $RECORD_TICKS / hz
shadow = $DIRECT_SHADOW_TICKS / hz
print(f"RDP through rampart: {$SESSIONS} sessions of a {'$SIZE'} desktop repainted {$REPAINTS}x/s, {$RUN} s each run")
print(f"{'figure':<44} {'value':>14}")
print(f"{'relayed to the clients':<44} {mb:>11.1f} MB")
print(f"{'rampart CPU per MB relayed':<44} {cpu * 1000 / mb:>11.2f} ms")
print(f"{'  of which the recorder threads':<44} {rec * 100 / max(cpu, 1e-9):>12.1f} %")
print(f"{'the target encoding it, direct, CPU s':<44} {shadow:>13.2f}s")
print(f"{'rampart RSS idle':<44} {$IDLE_RSS / 1024:>11.1f} MB")
print(f"{'rampart RSS peak with the sessions':<44} {$PEAK_RSS / 1024:>11.1f} MB")
print(f"{'  per session':<44} {($PEAK_RSS - $IDLE_RSS) / 1024 / $SESSIONS:>11.1f} MB")
print(f"{'rampart RSS after':<44} {$AFTER_RSS / 1024:>11.1f} MB")
print(f"{'recordings on disk per MB relayed':<44} {$REC_BYTES / 1e6 / mb:>12.3f}")
print(f"{'sessions ended with rows closed':<44} {$DONE:>14}")
print(f"{'export --format png of the end':<44} {($t1 - $t0):>13.2f}s")
print(f"{'export --format gif of it all':<44} {($t3 - $t2):>13.2f}s, {$GIF_BYTES / 1e6:.1f} MB")
EOF
while read -r direction n p50 p99; do
    what="the person's input to the target"
    [[ $direction == down ]] && what="the target's updates to the person"
    printf '%-44s %14s\n' "relay time per batch, $direction (p50 / p99)" "$p50 / $p99 us"
    printf '  %-42s %14s\n' "$what, batches" "$n"
done <"$TMP/relay_times.txt"
python3 - "$TMP/rtt.direct" "$TMP/rtt.rampart" <<'EOF'
import statistics, sys
def load(path):
    try:
        return sorted(float(l) for l in open(path) if l.strip())
    except OSError:
        return []
direct, through = load(sys.argv[1]), load(sys.argv[2])
def row(name, t):
    if len(t) < 10:
        print(f"{name:<44} {'too few: ' + str(len(t)):>14}")
        return None
    p90 = t[int(len(t) * 0.9)]
    print(f"{name:<44} {statistics.median(t):>7.1f} / {p90:.1f} ms  (n={len(t)})")
    return statistics.median(t)
a = row("key to update, direct (p50 / p90)", direct)
b = row("key to update, through rampart (p50 / p90)", through)
if a is not None and b is not None:
    print(f"{'  rampart adds at the median':<44} {b - a:>11.1f} ms")
EOF
# The half-block replay (80x24) and the audit view's player.
echo "$REPLAY"
