#!/usr/bin/env bash
# SSH speed and cost benchmark for rampart (issues 3 and 14).
#
#   cargo build --release && bash bench/ssh.sh
#
# On loopback, against a real OpenSSH sshd as the target, it compares three
# ways of reaching that target, in one run:
#   direct     ssh straight to the target sshd
#   ProxyJump  ssh -J through a second, stock sshd used as jump host
#   rampart    ssh to `rampart serve` (recording on, the default), exec/shell
#              on asset `target`
# and measures, in this order:
#   1. throughput of four streams, each without a pty (plain exec) and with
#      one (`ssh -tt`): zeros (`head -c BYTES /dev/zero`), random (a BYTES
#      file from /dev/urandom made once and `cat`ed, so the target's CPU for
#      urandom does not dominate), `seq 1 N` text (N chosen for about
#      TEXT_BYTES) and a TEXT_BYTES syslog-like file with ANSI colours
#      (bench/gen_syslog.py, made once). Median of RUNS per path, runs
#      interleaved across paths, every byte counted (a pty adds a CR per LF);
#      each run under THROUGHPUT_TIMEOUT (bench/stream_stats.py).
#      Per stream and mode, beside it:
#      - CPU per GB relayed: rampart's utime+stime (/proc/PID/stat) over each
#        run, and the jump sshd listener's utime+stime+cutime+cstime (its
#        per-connection children are reaped by it, so their CPU lands in
#        cutime/cstime; read once they are gone), and the ratio. Work rampart
#        does after a session ended (a background indexer) counts against
#        the run during which it happens, and shows in full in "incl. after";
#      - storage per GB relayed through rampart: the database's used bytes
#        ((page_count - freelist_count) * page_size, read with python's
#        sqlite3, fine on a WAL database in use), other files in the data dir
#        (a search index) and the recordings (.cast and raw sidecars), before
#        and after, the "after" once `wait_indexed` sees every ended session
#        indexed (the indexer's progress rows in the database);
#      - the time from the last byte of output to ssh's exit, per path.
#   2. keystroke echo round-trip (bench/echo_rtt.py) and connect time (`ssh
#      HOST true`), per path;
#   3. a second person: `ssh bastion target true` (login + exec), median of
#      LOGINS, on an idle bastion and while one rampart session streams the
#      syslog-like file in a loop at full speed (pty, LOAD_SECONDS); direct
#      ssh beside it shows what the machine's load alone costs;
#   4. BULK_N back-to-back transfers that must all finish, and an sftp get
#      and put of an SFTP_BYTES file (through rampart with the target in the
#      login name, `sftp bench@ACCOUNT@target@bastion`);
#   5. rampart's memory: RSS at start (after one warm-up session), peak
#      (VmHWM) over the whole run, and RSS SETTLE_SECONDS after every
#      session has ended (rampart renews its SQLite connections each
#      minute and gives free memory back every 10 s);
#      beside them the anonymous and file-backed parts (code paged in as
#      the run exercises more of the binary counts in RSS too).
# It prints a table per part, then a summary with each target of issue 14
# and PASS or FAIL next to the measured value.
#
# Everything lives in a temp dir (two sshd configs and host keys, client and
# target keys, a rampart data dir, the stream files) and is removed on exit;
# KEEP_TMP=1 keeps it. Every ssh runs under a timeout, and a global time
# budget skips what is left rather than letting the run exceed ~15 minutes;
# failures are listed at the end. The default run needs about 2.5 GB free in
# TMPDIR (stream files and the sftp file).
#
# Tunables (environment): RAMPART (binary), SSHD, RUNS, BYTES (zeros and
# random), TEXT_BYTES (seq and the syslog-like file; lower it for a slow
# binary), STREAMS and MODES (subsets, e.g. STREAMS="seq syslog" MODES=pty),
# SKIP (sections not to run: echo connect load bulk sftp), ECHO_KEYS,
# CONNECTS, LOGINS, LOAD_SECONDS, BULK_N, BULK_BYTES, SFTP_BYTES,
# BUDGET_SECONDS, KEX_ALGORITHMS, THROUGHPUT_TIMEOUT, BULK_TIMEOUT,
# SFTP_TIMEOUT, INDEX_MAX_SECONDS, SETTLE_SECONDS, KEEP_TMP.
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME and awk must use '.' as decimal separator

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RAMPART=${RAMPART:-$REPO/target/release/rampart}
SSHD=${SSHD:-/usr/sbin/sshd}
ECHO_HELPER=$REPO/bench/echo_rtt.py
STREAM_HELPER=$REPO/bench/stream_stats.py
SYSLOG_HELPER=$REPO/bench/gen_syslog.py

RUNS=${RUNS:-3}                     # throughput runs per path, stream and mode (median)
BYTES=${BYTES:-200000000}           # bytes per zeros and random run
TEXT_BYTES=${TEXT_BYTES:-$BYTES}    # bytes per seq and syslog-like run (the file's size)
STREAMS=${STREAMS:-zeros random seq syslog}
MODES=${MODES:-nopty pty}
SKIP=${SKIP:-}                      # e.g. "sftp bulk"
ECHO_KEYS=${ECHO_KEYS:-1000}        # measured keystrokes per path
CONNECTS=${CONNECTS:-20}            # `ssh host true` per path (median)
LOGINS=${LOGINS:-10}                # second-person logins, idle and while one streams
LOAD_SECONDS=${LOAD_SECONDS:-30}    # how long the streaming session streams
BULK_N=${BULK_N:-50}                # back-to-back transfers per path
BULK_BYTES=${BULK_BYTES:-20000000}  # bytes per bulk transfer
SFTP_BYTES=${SFTP_BYTES:-1073741824} # size of the file each sftp get and put moves
BUDGET_SECONDS=${BUDGET_SECONDS:-840}
# Client key exchange for all paths, e.g. curve25519-sha256 to compare connect
# times on equal terms; empty: the client's default preference.
KEX_ALGORITHMS=${KEX_ALGORITHMS:-}

THROUGHPUT_TIMEOUT=${THROUGHPUT_TIMEOUT:-60} # per run: 200 MB below ~3.5 MB/s counts as a failure
BULK_TIMEOUT=${BULK_TIMEOUT:-30}       # per bulk transfer: a lost CHANNEL_CLOSE shows up here
SFTP_TIMEOUT=${SFTP_TIMEOUT:-180}      # per sftp transfer (1 GiB: below ~6 MB/s fails), capped by the budget
INDEX_MAX_SECONDS=${INDEX_MAX_SECONDS:-300}     # wait_indexed: the indexer reads at most 32 MiB/s
BULK_MAX_TIMEOUTS=3   # stop a path's bulk series after this many hangs
CONNECT_TIMEOUT=20
SETTLE_SECONDS=${SETTLE_SECONDS:-75}  # idle time before the final RSS reading: the store renews
                                    # its SQLite connections each minute, and frees memory every 10 s

# Issue 14's targets.
MIN_VS_PROXYJUMP=1.0  # throughput, rampart / ProxyJump
MAX_CPU_RATIO=2.5     # rampart CPU per GB / jump sshd CPU per GB
MAX_ECHO_ADDED_MS=0.2 # median echo round-trip over direct
MAX_LOGIN_RATIO=2     # login + `true` while one streams / idle
MAX_EXIT_LAG=1        # seconds from a session's last byte to its exit
MAX_TEXT_GROWTH=0.05  # database + index bytes per byte relayed, text streams
MAX_OTHER_MB_PER_GB=10 # database + index MB per GB relayed, other streams
MAX_PEAK_RSS_MB=40
MAX_RSS_GROWTH_PCT=10 # RSS once the sessions ended, over the start

PATHS=(direct proxyjump rampart)
declare -A LABEL=([direct]=direct [proxyjump]=ProxyJump [rampart]=rampart)
declare -A STREAM_LABEL=([zeros]=zeros [random]=random [seq]=seq [syslog]=syslog-like)
declare -A MODE_LABEL=([nopty]="no pty" [pty]=pty)
declare -A STREAM_CMD=()  # remote command per stream
declare -A STREAM_SIZE=() # bytes each stream writes
declare -A STREAM_NL=()   # newlines in it (a pty turns each into CR LF)
declare -A R=()     # results: R[path.metric] or R[path.stream.mode.metric]
declare -A DEAD=()  # paths whose preflight failed
declare -A KEX=()   # key exchange and cipher each path's client negotiated
declare -A LOGIN_FAILURES=() # second-person logins refused: [path] idle, [path.busy] while one streams
FAILURES=()
PIDS=()             # processes this script started (sshd x2, rampart)
TMP=""
RAMPART_PID=""
JUMP_PID=""
DEADLINE=$((SECONDS + BUDGET_SECONDS))

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { FAILURES+=("$*"); log "FAIL: $*"; }
die() { log "error: $*"; exit 1; }
skipped() { [[ " $SKIP " == *" $1 "* ]]; }

# ---------------------------------------------------------------- setup ---

check_prereqs() {
    [[ -x $RAMPART ]] || die "$RAMPART not found: run 'cargo build --release' first"
    [[ -x $SSHD ]] || die "$SSHD not found: install openssh-server"
    local tool
    for tool in ssh sftp ssh-keygen python3 timeout awk sort stat df find pgrep tr; do
        command -v "$tool" >/dev/null || die "$tool not found"
    done
}

cleanup() {
    local status=$? pid i
    set +e
    # rampart first, with SIGTERM so that it finalises its recordings.
    if [[ -n $RAMPART_PID ]] && kill -0 "$RAMPART_PID" 2>/dev/null; then
        kill -TERM "$RAMPART_PID"
        for ((i = 0; i < 50; i++)); do
            kill -0 "$RAMPART_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$RAMPART_PID" 2>/dev/null
    fi
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    if [[ -n $TMP ]]; then
        if [[ -n ${KEEP_TMP:-} ]]; then
            log "kept $TMP"
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$status"
}

# Free loopback TCP ports, one per line (bound together so they differ).
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in socks))
EOF
}

wait_port() { # PORT SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# A stock sshd on 127.0.0.1:PORT, running as the current user, accepting the
# keys in $TMP/authorized_keys. NAME is target or jump.
start_sshd() { # NAME PORT
    local name=$1 port=$2 dir=$TMP/$1
    mkdir -p "$dir"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    cat >"$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $TMP/authorized_keys
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
Subsystem sftp internal-sftp
PermitUserEnvironment SHLVL
PrintMotd no
PrintLastLog no
EOF
    "$SSHD" -D -e -f "$dir/sshd_config" 2>>"$dir/sshd.log" &
    PIDS+=("$!")
    wait_port "$port" 10 || die "sshd $name did not listen on $port: $(tail -5 "$dir/sshd.log")"
}

# Client options for all three paths live in one ssh_config, so that the
# ProxyJump hop (which ssh runs as a separate `ssh -W`, passing -F on) gets
# exactly the same ones.
write_ssh_config() { # TARGET_PORT JUMP_PORT BASTION_PORT
    cat >"$TMP/ssh_config" <<EOF
Host direct
    HostName 127.0.0.1
    Port $1
    User $USER_NAME
Host jump
    HostName 127.0.0.1
    Port $2
    User $USER_NAME
Host proxyjump
    HostName 127.0.0.1
    Port $1
    User $USER_NAME
    ProxyJump jump
Host rampart
    HostName 127.0.0.1
    Port $3
    User bench
Host *
    IdentityFile $TMP/client_key
    IdentitiesOnly yes
    BatchMode yes
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
    ConnectTimeout 10
    ServerAliveInterval 5
    ServerAliveCountMax 3
    EscapeChar none
    # Newer clients (9.5+) delay keystrokes to hide their timing; that would
    # swamp the echo measurement, so turn it off where it exists.
    IgnoreUnknown ObscureKeystrokeTiming
    ObscureKeystrokeTiming no
EOF
    if [[ -n $KEX_ALGORITHMS ]]; then
        printf '    KexAlgorithms %s\n' "$KEX_ALGORITHMS" >>"$TMP/ssh_config"
    fi
}

rampart_cli() { "$RAMPART" "$@" >>"$TMP/rampart-cli.log" 2>&1; }

# rampart with recording on (the default), a user `bench` with the client
# key, asset `target` = the target sshd, reached as the current user with a
# key of its own that the target sshd authorises.
start_rampart() { # BASTION_PORT TARGET_PORT
    export RAMPART_CONFIG=$TMP/rampart.toml
    cat >"$RAMPART_CONFIG" <<EOF
data_dir = "$TMP/data"

[ssh]
listen = ["127.0.0.1:$1"]
EOF
    rampart_cli init || die "rampart init failed: $(tail -5 "$TMP/rampart-cli.log")"
    if ! { rampart_cli user add bench --key-file "$TMP/client_key.pub" &&
        rampart_cli asset add target --address 127.0.0.1 --protocol "ssh/$2" --protocol "sftp/$2" &&
        rampart_cli account add target "$USER_NAME" --key-file "$TMP/target_key" &&
        rampart_cli perm add bench-target --user bench --asset target; }; then
        die "rampart setup failed: $(tail -5 "$TMP/rampart-cli.log")"
    fi
    "$RAMPART" serve >>"$TMP/rampart.log" 2>&1 &
    RAMPART_PID=$!
    wait_port "$1" 20 || die "rampart did not listen on $1: $(tail -20 "$TMP/rampart.log")"
}

setup() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/rampart-bench.XXXXXX")
    USER_NAME=$(id -un)
    mkdir -p /run/sshd 2>/dev/null || true # sshd's privilege separation dir
    ssh-keygen -q -t ed25519 -N '' -C bench-client -f "$TMP/client_key"
    ssh-keygen -q -t ed25519 -N '' -C bench-bastion -f "$TMP/target_key"
    # The target accepts the client (direct, ProxyJump) and rampart's account
    # key; the jump host needs the client key only, sharing the file is fine.
    # environment="SHLVL=1": bash sources ~/.bashrc for every command run
    # over ssh when SHLVL is unset (a login shell still reads it). A heavy
    # rc file (pyenv init, ~0.4 s here) would otherwise be added to every
    # connect and transfer on all three paths alike and hide the differences
    # this benchmark is about.
    sed 's/^/environment="SHLVL=1" /' "$TMP/client_key.pub" "$TMP/target_key.pub" >"$TMP/authorized_keys"
    local ports target_port jump_port bastion_port
    ports=$(free_ports 3)
    { read -r target_port; read -r jump_port; read -r bastion_port; } <<<"$ports"
    start_sshd target "$target_port"
    start_sshd jump "$jump_port"
    JUMP_PID=${PIDS[-1]}
    write_ssh_config "$target_port" "$jump_port" "$bastion_port"
    start_rampart "$bastion_port" "$target_port"
    log "target sshd :$target_port, jump sshd :$jump_port, rampart :$bastion_port (pid $RAMPART_PID), tmp $TMP"
}

# The stream files live in $TMP, which the target (this machine, same user)
# reads. Random data is made once so the target's CPU for urandom does not
# dominate; the syslog-like file is made once (the same for the same size).
prepare_streams() {
    local stream n size
    for stream in $STREAMS; do
        case $stream in
        zeros)
            STREAM_CMD[zeros]="head -c $BYTES /dev/zero"
            STREAM_SIZE[zeros]=$BYTES
            STREAM_NL[zeros]=0
            ;;
        random)
            head -c "$BYTES" /dev/urandom >"$TMP/random.bin" || die "could not write $TMP/random.bin"
            STREAM_CMD[random]="cat $TMP/random.bin"
            STREAM_SIZE[random]=$BYTES
            STREAM_NL[random]=$(tr -cd '\n' <"$TMP/random.bin" | wc -c)
            ;;
        seq)
            # The largest N whose `seq 1 N` output fits in TEXT_BYTES.
            read -r n size < <(awk -v max="$TEXT_BYTES" 'BEGIN {
                n = 0; size = 0
                for (d = 1; d < 16; d++) {
                    lo = 10 ^ (d - 1); hi = 10 ^ d - 1; w = d + 1
                    if (size + (hi - lo + 1) * w > max) { k = int((max - size) / w); n = lo - 1 + k; size += k * w; break }
                    size += (hi - lo + 1) * w; n = hi
                }
                printf "%.0f %.0f\n", n, size }')
            STREAM_CMD[seq]="seq 1 $n"
            STREAM_SIZE[seq]=$size
            STREAM_NL[seq]=$n
            ;;
        syslog)
            log "writing a $((TEXT_BYTES / 1000000)) MB syslog-like file"
            python3 "$SYSLOG_HELPER" "$TEXT_BYTES" "$TMP/syslog.log" || die "bench/gen_syslog.py failed"
            STREAM_CMD[syslog]="cat $TMP/syslog.log"
            STREAM_SIZE[syslog]=$(stat -c %s "$TMP/syslog.log")
            STREAM_NL[syslog]=$(tr -cd '\n' <"$TMP/syslog.log" | wc -c)
            ;;
        *) die "unknown stream '$stream' in STREAMS (zeros random seq syslog)" ;;
        esac
    done
    local mode
    for mode in $MODES; do
        [[ $mode == nopty || $mode == pty ]] || die "unknown mode '$mode' in MODES (nopty pty)"
    done
}

# ---------------------------------------------------------- measuring ---

budget_ok() { ((SECONDS < DEADLINE)); }

# ssh along one path under a timeout:
#   run_ssh SECONDS PATH [ssh options...] -- [remote command]
# Through rampart the remote command is prefixed with the asset name, and an
# empty one opens an interactive shell on the asset (with -tt).
run_ssh() {
    local seconds=$1 path=$2 opts=()
    shift 2
    while (($#)) && [[ $1 != -- ]]; do
        opts+=("$1")
        shift
    done
    [[ ${1:-} == -- ]] && shift
    local prefix=()
    [[ $path == rampart ]] && prefix=(target)
    timeout -k 5 "$seconds" ssh -F "$TMP/ssh_config" "${opts[@]}" "$path" "${prefix[@]}" "$@"
}

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }

median() { # numbers as arguments
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) exit 1
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

maximum() { printf '%s\n' "$@" | sort -g | tail -n 1; }

rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo "?"; }
CLK_TCK=$(getconf CLK_TCK)
cpu_seconds() { # utime + stime of a process, in seconds
    awk -v hz="$CLK_TCK" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' \
        "/proc/$1/stat" 2>/dev/null || echo "?"
}
cpu_ticks() { # utime + stime, in clock ticks
    awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
# The jump sshd listener's own CPU plus that of the children it has reaped
# (one per connection, which did the work): call once they are gone.
jump_ticks() {
    awk '{ sub(/.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$JUMP_PID/stat" 2>/dev/null || echo 0
}
jump_reaped() { # wait up to 5 s for the jump sshd's connection children to end
    local i
    for ((i = 0; i < 50; i++)); do
        pgrep -P "$JUMP_PID" >/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# Used bytes of rampart's database; 0 before it exists, "?" when unreadable.
db_used() {
    python3 - "$TMP/data/rampart.db" <<'PY' 2>>"$TMP/db-errors.log" || echo "?"
import os, sqlite3, sys
path = sys.argv[1]
if not os.path.exists(path):
    print(0)
    sys.exit()
db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
pages, free, size = (db.execute(f"pragma {p}").fetchone()[0] for p in ("page_count", "freelist_count", "page_size"))
print((pages - free) * size)
PY
}

# "DB OTHER RECORDINGS": the database's used bytes, the other files of the
# data dir (where a search index would live, beside keys that do not grow;
# the database's own files are not counted twice), and the recordings
# (.cast files and their raw sidecars).
storage() {
    local files
    files=$(find "$TMP/data" -type f -printf '%s %p\n' 2>/dev/null | awk -v d="$TMP/data" '
        { size = $1; path = substr($0, index($0, " ") + 1) }
        path ~ "^" d "/rampart\\.db" { next }
        path ~ "^" d "/recordings/" && (path ~ /\.cast$/ || path ~ /\.raw/) { rec += size; next }
        { other += size }
        # %.0f, not %d: mawk caps %d at 2^31 - 1, and the recordings pass that.
        END { printf "%.0f %.0f", other, rec }')
    echo "$(db_used) $files"
}

# Recorded sessions that have ended but whose recording the screen-text
# indexer has not read to its end yet ("?" when the database cannot say).
unindexed() {
    python3 - "$TMP/data/rampart.db" <<'PY' 2>>"$TMP/db-errors.log" || echo "?"
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
print(db.execute("""SELECT COUNT(*) FROM sessions s
    LEFT JOIN search_progress p ON p.session_id = s.id
    WHERE s.recording IS NOT NULL AND s.recording != '' AND s.status != 'live'
      AND COALESCE(p.done, 0) = 0""").fetchone()[0])
PY
}

# Waits until rampart has indexed what it relayed: every ended session's
# recording read to its end by the indexer (search_progress.done), at most
# INDEX_MAX_SECONDS.
wait_indexed() {
    local left="" t0=$SECONDS
    while ((SECONDS - t0 < INDEX_MAX_SECONDS)); do
        left=$(unindexed)
        [[ $left == 0 ]] && return 0
        sleep 1
    done
    fail "wait_indexed: $left ended sessions still not indexed after ${INDEX_MAX_SECONDS}s"
    return 1
}

# Each path must carry a trivial command before it is measured; a broken
# path is reported and skipped instead of timing out in every test. With -v
# it also tells which key exchange the client got (OpenSSH 9 prefers the
# post-quantum sntrup761x25519, noticeably slower to set up than curve25519).
preflight() {
    local path out
    for path in "${PATHS[@]}"; do
        if out=$(run_ssh 30 "$path" -v -- echo preflight-ok </dev/null 2>&1) && [[ $out == *preflight-ok* ]]; then
            KEX[$path]="$(grep -o 'kex: algorithm: [^ ]*' <<<"$out" | awk '{ print $3 }' | sort -u | paste -sd, -)"
            KEX[$path]+=" $(grep -o 'server->client cipher: [^ ]*' <<<"$out" | awk '{ print $3 }' | sort -u | paste -sd, -)"
            continue
        fi
        DEAD[$path]=1
        fail "${LABEL[$path]}: preflight 'echo' failed: ${out:0:300}"
    done
}

# One streaming run: PATH MODE STREAM. Sets RUN_STATUS (ssh's exit status,
# 124 when it timed out), RUN_BYTES (received), RUN_T0, RUN_TLAST, RUN_TEXIT
# (the command's start, its last byte and its exit) and RUN_TS (when the
# stream started on the target: the target is this machine, so the remote
# command writes its start time into a file here).
stream_run() {
    local path=$1 mode=$2 stream=$3 tty=() prefix=() stamp=$TMP/stream-start out
    [[ $mode == pty ]] && tty=(-tt)
    [[ $path == rampart ]] && prefix=(target)
    rm -f "$stamp"
    out=$(python3 "$STREAM_HELPER" --timeout "$THROUGHPUT_TIMEOUT" -- \
        ssh -F "$TMP/ssh_config" "${tty[@]}" "$path" "${prefix[@]}" \
        "date +%s.%N >$stamp; ${STREAM_CMD[$stream]}" 2>>"$TMP/ssh-errors.log") || true
    [[ -n $out ]] || out="999 0 0 0 0 0" # the helper itself failed
    read -r RUN_STATUS RUN_BYTES RUN_T0 _ RUN_TLAST RUN_TEXIT <<<"$out"
    RUN_TS=$(cat "$stamp" 2>/dev/null || true)
}

mbps() { awk -v b="$1" -v t="$(elapsed "$2" "$3")" 'BEGIN { if (t > 0) printf "%.1f", b / 1e6 / t; else print "?" }'; }
per_gb() { # TICKS BYTES -> CPU seconds per GB
    awk -v c="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.2f", c / hz / (n / 1e9); else print "n/a" }'
}
mb_per_gb() { # GROWTH BYTES -> MB per GB relayed
    awk -v g="$1" -v n="$2" 'BEGIN { if (g ~ /^-?[0-9]+$/ && n > 0) printf "%.1f", g / 1e6 / (n / 1e9); else print "n/a" }'
}

# Throughput of one stream in one mode (nopty|pty), RUNS times per path,
# interleaved across paths so that drift in machine load hits all three
# alike. Two rates per run:
#   wall    the whole ssh command, connection set-up included, as a person
#           would time it;
#   stream  from the stream's start on the target to ssh's exit: the data
#           phase alone, so that differing connect times (rampart and
#           ProxyJump each set up two SSH connections, with different key
#           exchanges) do not blur the relay's own speed.
# Each run must deliver every byte (a pty turns LF into CR LF) and exit 0.
measure_stream() { # STREAM MODE
    local stream=$1 mode=$2 run path key=$1.$2 expected
    expected=${STREAM_SIZE[$stream]}
    [[ $mode == pty ]] && expected=$((expected + STREAM_NL[$stream]))
    declare -A wall=() rate=() lag=() broken=()
    local c0 c1 j0 j1 rcpu=0 rbytes=0 jcpu=0 jbytes=0 s0 s1 b0 b1
    # The previous block ended with wait_indexed (measure_throughput waits
    # once before the first).
    s0=$(storage)
    b0=$(cpu_ticks "$RAMPART_PID")
    for ((run = 1; run <= RUNS; run++)); do
        for path in "${PATHS[@]}"; do
            [[ -n ${DEAD[$path]:-} || -n ${broken[$path]:-} ]] && continue
            budget_ok || { fail "throughput $stream ${MODE_LABEL[$mode]} ${LABEL[$path]}: skipped, time budget spent"; continue; }
            [[ $path == rampart ]] && c0=$(cpu_ticks "$RAMPART_PID")
            [[ $path == proxyjump ]] && j0=$(jump_ticks)
            stream_run "$path" "$mode" "$stream"
            if [[ $path == rampart ]]; then
                c1=$(cpu_ticks "$RAMPART_PID")
                rcpu=$((rcpu + c1 - c0)) rbytes=$((rbytes + RUN_BYTES))
            fi
            if [[ $path == proxyjump ]]; then
                jump_reaped || log "jump sshd still has connection children 5 s after ssh exited"
                j1=$(jump_ticks)
                jcpu=$((jcpu + j1 - j0)) jbytes=$((jbytes + RUN_BYTES))
            fi
            # A run ended by the timeout counts too: its last byte to exit is
            # at least the time until it was ended.
            [[ $RUN_TEXIT != 0 ]] && lag[$path]+=" $(elapsed "$RUN_TLAST" "$RUN_TEXIT")"
            if [[ $RUN_STATUS != 0 ]]; then
                broken[$path]="run $run: ssh exit $RUN_STATUS"
                [[ $RUN_STATUS == 124 ]] && broken[$path]+=", timed out after ${THROUGHPUT_TIMEOUT}s"
                fail "throughput $stream ${MODE_LABEL[$mode]} ${LABEL[$path]} run $run: ${broken[$path]#run $run: }," \
                    "$RUN_BYTES of $expected bytes, the last $(elapsed "$RUN_TLAST" "$RUN_TEXIT" | awk '{ printf "%.1f", $1 }') s before its end"
                continue
            fi
            if ((RUN_BYTES != expected)); then
                broken[$path]="run $run: $RUN_BYTES of $expected bytes"
                fail "throughput $stream ${MODE_LABEL[$mode]} ${LABEL[$path]} run $run: $RUN_BYTES bytes received, $expected expected"
                continue
            fi
            wall[$path]+=" $(mbps "$RUN_BYTES" "$RUN_T0" "$RUN_TEXIT")"
            [[ -n $RUN_TS ]] && rate[$path]+=" $(mbps "$RUN_BYTES" "$RUN_TS" "$RUN_TEXIT")"
        done
    done
    # The "after" reading waits for rampart's indexing of this block.
    wait_indexed || true
    s1=$(storage)
    b1=$(cpu_ticks "$RAMPART_PID")
    for path in "${PATHS[@]}"; do
        [[ -n ${broken[$path]:-} ]] && R[$path.$key.broken]=${broken[$path]}
        if [[ -n ${lag[$path]:-} ]]; then
            # shellcheck disable=SC2086 # the samples are a space-separated list
            R[$path.$key.lag]=$(median ${lag[$path]} | awk '{ printf "%.3f", $1 }')
            # shellcheck disable=SC2086
            R[$path.$key.lag_max]=$(maximum ${lag[$path]} | awk '{ printf "%.3f", $1 }')
        fi
        [[ -z ${broken[$path]:-} && -n ${wall[$path]:-} ]] || continue
        # shellcheck disable=SC2086 # the samples are a space-separated list
        R[$path.$key.wall]=$(median ${wall[$path]})
        # shellcheck disable=SC2086
        [[ -n ${rate[$path]:-} ]] && R[$path.$key.stream]=$(median ${rate[$path]})
        log "$stream ${MODE_LABEL[$mode]} ${LABEL[$path]}: stream${rate[$path]:- ?} MB/s; wall${wall[$path]} MB/s;" \
            "last byte to exit${lag[$path]} s"
    done
    # Costs, counted over every rampart run of the block (a timed-out run's
    # bytes and CPU too: what was relayed, and what it cost).
    R[rampart.$key.bytes]=$rbytes
    R[rampart.$key.cpu]=$(per_gb "$rcpu" "$rbytes")
    R[rampart.$key.cpu_all]=$(per_gb "$((b1 - b0))" "$rbytes")
    R[jump.$key.cpu]=$(per_gb "$jcpu" "$jbytes")
    local d0 o0 r0 d1 o1 r1
    read -r d0 o0 r0 <<<"$s0"
    read -r d1 o1 r1 <<<"$s1"
    if [[ $d0 =~ ^[0-9]+$ && $d1 =~ ^[0-9]+$ ]]; then
        R[rampart.$key.db]=$(mb_per_gb "$((d1 - d0))" "$rbytes")
        R[rampart.$key.index]=$(mb_per_gb "$((o1 - o0))" "$rbytes")
        R[rampart.$key.db_index]=$(mb_per_gb "$((d1 - d0 + o1 - o0))" "$rbytes")
    else
        fail "database size unreadable around $stream ${MODE_LABEL[$mode]}: $(tail -n 1 "$TMP/db-errors.log" 2>/dev/null)"
    fi
    R[rampart.$key.rec]=$(mb_per_gb "$((r1 - r0))" "$rbytes")
    log "$stream ${MODE_LABEL[$mode]} costs: rampart CPU ${R[rampart.$key.cpu]} s/GB in session," \
        "${R[rampart.$key.cpu_all]} s/GB incl. after; jump sshd ${R[jump.$key.cpu]} s/GB;" \
        "database ${R[rampart.$key.db]:-?} MB/GB, index ${R[rampart.$key.index]:-?} MB/GB, recordings ${R[rampart.$key.rec]} MB/GB"
}

measure_throughput() {
    local stream mode
    wait_indexed || true
    for stream in $STREAMS; do
        for mode in $MODES; do
            budget_ok || { fail "throughput $stream ${MODE_LABEL[$mode]}: skipped, time budget spent"; continue; }
            log "throughput: $stream, ${MODE_LABEL[$mode]} ($RUNS x $((STREAM_SIZE[$stream] / 1000000)) MB per path)"
            measure_stream "$stream" "$mode"
        done
    done
}

# Keystroke echo: see bench/echo_rtt.py; an interactive login shell on the
# target in each case (through rampart: the shell on asset `target`).
measure_echo() {
    local path out
    for path in "${PATHS[@]}"; do
        [[ -n ${DEAD[$path]:-} ]] && continue
        budget_ok || { fail "echo ${LABEL[$path]}: skipped, time budget spent"; continue; }
        local prefix=()
        [[ $path == rampart ]] && prefix=(target)
        out=$(timeout -k 5 150 python3 "$ECHO_HELPER" --count "$ECHO_KEYS" --budget 90 -- \
            ssh -F "$TMP/ssh_config" -tt "$path" "${prefix[@]}" 2>>"$TMP/echo-errors.log") || true
        if [[ $out == ok\ * ]]; then
            read -r _ _ "R[$path.echo_med]" "R[$path.echo_p99]" _ _ <<<"$out"
            log "echo ${LABEL[$path]}: $out"
        else
            fail "echo ${LABEL[$path]}: ${out:-helper timed out} (see transcript below)"
            sed 's/^/    /' "$TMP/echo-errors.log" >&2
        fi
        : >"$TMP/echo-errors.log"
    done
}

# Connect time: `ssh host true`, connection set-up to exit, median.
measure_connect() {
    local path i t0 t1 status
    declare -A samples=()
    for ((i = 1; i <= CONNECTS; i++)); do
        for path in "${PATHS[@]}"; do
            [[ -n ${DEAD[$path]:-} ]] && continue
            budget_ok || break 2
            t0=$EPOCHREALTIME
            status=0
            run_ssh "$CONNECT_TIMEOUT" "$path" -- true </dev/null 2>>"$TMP/ssh-errors.log" || status=$?
            t1=$EPOCHREALTIME
            if ((status == 0)); then
                samples[$path]+=" $(awk -v t="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.1f", t * 1000 }')"
            else
                fail "connect ${LABEL[$path]} #$i: ssh exit $status"
            fi
        done
    done
    for path in "${PATHS[@]}"; do
        [[ -n ${samples[$path]:-} ]] || continue
        # shellcheck disable=SC2086
        R[$path.connect]=$(median ${samples[$path]} | awk '{ printf "%.1f", $1 }')
        log "connect ${LABEL[$path]}: median ${R[$path.connect]} ms over $(wc -w <<<"${samples[$path]}") runs"
    done
}

# Login + `true` through rampart, and direct beside it, LOGINS times each,
# interleaved; while FOR_PID (if given) still runs. Appends milliseconds to
# the arrays named by the first two arguments.
time_logins() { # RAMPART_ARRAY DIRECT_ARRAY [FOR_PID]
    local -n ramp=$1 dir=$2
    local pid=${3:-} i path t0 t1 status
    for ((i = 1; i <= LOGINS; i++)); do
        for path in rampart direct; do
            [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null && return 0
            [[ -n ${DEAD[$path]:-} ]] && continue
            t0=$EPOCHREALTIME
            status=0
            run_ssh "$CONNECT_TIMEOUT" "$path" -- true </dev/null 2>>"$TMP/ssh-errors.log" || status=$?
            t1=$EPOCHREALTIME
            if ((status != 0)); then
                fail "second person: ${LABEL[$path]} login #$i${pid:+ while one streams}: ssh exit $status"
                LOGIN_FAILURES[$path${pid:+.busy}]=$((${LOGIN_FAILURES[$path${pid:+.busy}]:-0} + 1))
                continue
            fi
            if [[ $path == rampart ]]; then
                ramp+=("$(awk -v t="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.1f", t * 1000 }')")
            else
                dir+=("$(awk -v t="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.1f", t * 1000 }')")
            fi
        done
    done
}

# A second person while one streams: the median of LOGINS `ssh bastion
# target true` on an idle bastion, then while one rampart session streams
# the syslog-like file in a loop at full speed in a pty (bounded by
# LOAD_SECONDS on the target). The streaming session's own last byte to exit
# is measured too. Direct ssh, measured the same way, shows what the load on
# the machine costs any login.
measure_load() {
    [[ -n ${DEAD[rampart]:-} ]] && return
    [[ -n ${STREAM_CMD[syslog]:-} ]] || { fail "second person: skipped, needs the syslog stream (STREAMS)"; return; }
    budget_ok || { fail "second person: skipped, time budget spent"; return; }
    wait_indexed || true
    local idle=() idle_direct=() busy=() busy_direct=() pid out status bytes t0 tlast texit
    time_logins idle idle_direct
    log "second person: streaming ${STREAM_SIZE[syslog]}-byte syslog-like file in a loop for ${LOAD_SECONDS}s"
    python3 "$STREAM_HELPER" --timeout "$((LOAD_SECONDS + 60))" -- \
        ssh -F "$TMP/ssh_config" -tt rampart target \
        "exec timeout $LOAD_SECONDS sh -c 'while :; do cat $TMP/syslog.log; done'" \
        >"$TMP/load-stats" 2>>"$TMP/ssh-errors.log" &
    pid=$!
    sleep 2
    time_logins busy busy_direct "$pid"
    ((${#busy[@]} >= LOGINS)) || fail "second person: the streaming session ended after ${#busy[@]} of $LOGINS logins"
    wait "$pid" || true
    out=$(cat "$TMP/load-stats" 2>/dev/null || true)
    read -r status bytes t0 _ tlast texit <<<"${out:-999 0 0 0 0 0}"
    # The target's `timeout` ends the loop with 124; the helper's own
    # timeout (60 s later) would also say 124, so the duration tells them apart.
    if [[ $status != 0 && $status != 124 ]] || awk -v a="$t0" -v b="$texit" -v l="$LOAD_SECONDS" 'BEGIN { exit !(b - a > l + 50) }'; then
        fail "second person: the streaming session ended with status $status after $(elapsed "$t0" "$texit") s"
    else
        R[load.lag]=$(elapsed "$tlast" "$texit" | awk '{ printf "%.3f", $1 }')
    fi
    R[load.mbps]=$(mbps "$bytes" "$t0" "$tlast")
    ((${#idle[@]})) && R[load.idle]=$(median "${idle[@]}")
    ((${#busy[@]})) && R[load.busy]=$(median "${busy[@]}")
    R[load.refused]=$((${LOGIN_FAILURES[rampart]:-0} + ${LOGIN_FAILURES[rampart.busy]:-0}))
    R[load.tried]=$((${#idle[@]} + ${#busy[@]} + ${R[load.refused]}))
    ((${#idle_direct[@]})) && R[load.idle_direct]=$(median "${idle_direct[@]}")
    ((${#busy_direct[@]})) && R[load.busy_direct]=$(median "${busy_direct[@]}")
    log "second person: rampart idle ${idle[*]:-} ms; while streaming ${busy[*]:-} ms"
    log "second person: direct idle ${idle_direct[*]:-} ms; while streaming ${busy_direct[*]:-} ms"
    log "second person: the streaming session moved $bytes bytes at ${R[load.mbps]} MB/s, last byte to exit ${R[load.lag]:-?} s"
    wait_indexed || true
}

# BULK_N transfers of BULK_BYTES each, one after the other. A transfer counts
# as completed when ssh exits 0 within BULK_TIMEOUT with every byte received;
# a session whose final CHANNEL_CLOSE is lost hangs until the timeout.
measure_bulk() {
    local path i n status done_ timeouts t0 t1
    for path in "${PATHS[@]}"; do
        [[ -n ${DEAD[$path]:-} ]] && continue
        done_=0 timeouts=0
        t0=$EPOCHREALTIME
        for ((i = 1; i <= BULK_N; i++)); do
            if ! budget_ok; then
                fail "bulk ${LABEL[$path]}: time budget spent after $((i - 1)) transfers"
                break
            fi
            status=0
            n=$(run_ssh "$BULK_TIMEOUT" "$path" -- "head -c $BULK_BYTES /dev/zero" \
                </dev/null 2>>"$TMP/ssh-errors.log" | wc -c) || status=$?
            if ((status == 0 && n == BULK_BYTES)); then
                done_=$((done_ + 1))
                continue
            fi
            if ((status == 124 || status == 137)); then
                timeouts=$((timeouts + 1))
                fail "bulk ${LABEL[$path]} #$i: no exit within ${BULK_TIMEOUT}s ($n of $BULK_BYTES bytes received)"
                if ((timeouts >= BULK_MAX_TIMEOUTS)); then
                    fail "bulk ${LABEL[$path]}: $timeouts hangs, remaining transfers not run"
                    break
                fi
            else
                fail "bulk ${LABEL[$path]} #$i: ssh exit $status, $n of $BULK_BYTES bytes"
            fi
        done
        t1=$EPOCHREALTIME
        R[$path.bulk]="$done_/$BULK_N"
        R[$path.bulk_s]=$(awk -v t="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.1f", t }')
        log "bulk ${LABEL[$path]}: ${R[$path.bulk]} completed in ${R[$path.bulk_s]} s"
    done
}

# The sftp destination of each path. Through rampart the target is in the
# login name, the way scp, sftp and rsync users reach it; the alias `rampart`
# in the ssh_config gives host, port and options.
sftp_destination() {
    if [[ $1 == rampart ]]; then
        echo "bench@$USER_NAME@target@rampart"
    else
        echo "$1"
    fi
}

# One sftp get and one put of a SFTP_BYTES file per path, wall time of the
# whole sftp command (connection set-up included, small next to the data).
# The target is this machine, so a get and a put are the same batch line,
# `get|put SOURCE DEST`, read from and written to $TMP. The file is random
# (not /dev/zero: nothing along the way may gain from compressing it) and
# made once; each copy is checked for its size and removed.
measure_sftp() {
    local src=$TMP/sftp-source op path dst status t0 t1 left limit size err why cpu0 need free
    need=$(((2 * SFTP_BYTES) / 1024 + 65536))
    free=$(df -Pk "$TMP" | awk 'NR == 2 { print $4 }')
    if ((free < need)); then
        fail "sftp: skipped, $free kB free in $TMP and $need kB needed (lower SFTP_BYTES)"
        return
    fi
    budget_ok || { fail "sftp: skipped, time budget spent"; return; }
    if ! head -c "$SFTP_BYTES" /dev/urandom >"$src"; then
        fail "sftp: could not write the $SFTP_BYTES-byte source file"
        return
    fi
    local rampart_cpu=0 rampart_bytes=0
    for op in get put; do
        for path in "${PATHS[@]}"; do
            [[ -n ${DEAD[$path]:-} ]] && continue
            left=$((DEADLINE - SECONDS))
            if ((left < 10)); then
                fail "sftp $op ${LABEL[$path]}: skipped, time budget spent"
                continue
            fi
            limit=$((left < SFTP_TIMEOUT ? left : SFTP_TIMEOUT))
            dst=$TMP/sftp-$op-$path
            printf '%s %s %s\n' "$op" "$src" "$dst" >"$TMP/sftp-batch"
            status=0
            [[ $path == rampart ]] && cpu0=$(cpu_seconds "$RAMPART_PID")
            t0=$EPOCHREALTIME
            timeout -k 5 "$limit" sftp -F "$TMP/ssh_config" -b "$TMP/sftp-batch" "$(sftp_destination "$path")" \
                </dev/null >/dev/null 2>"$TMP/sftp-errors.log" || status=$?
            t1=$EPOCHREALTIME
            size=$(stat -c %s "$dst" 2>/dev/null || echo 0)
            rm -f "$dst"
            cat "$TMP/sftp-errors.log" >>"$TMP/ssh-errors.log"
            if ((status != 0 || size != SFTP_BYTES)); then
                err=$(grep -v '^$' "$TMP/sftp-errors.log" | tail -n 2 | paste -sd ' ' - || true)
                why="sftp exit $status"
                ((status == 124 || status == 137)) && why="timed out after ${limit}s"
                fail "sftp $op ${LABEL[$path]}: $why, $size of $SFTP_BYTES bytes${err:+: ${err:0:200}}"
                continue
            fi
            R[$path.sftp_$op]=$(awk -v b="$SFTP_BYTES" -v t="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.1f", b / 1e6 / t }')
            log "sftp $op ${LABEL[$path]}: ${R[$path.sftp_$op]} MB/s"
            if [[ $path == rampart ]]; then
                rampart_cpu=$(awk -v a="$rampart_cpu" -v b="$cpu0" -v c="$(cpu_seconds "$RAMPART_PID")" 'BEGIN { print a + c - b }')
                rampart_bytes=$((rampart_bytes + SFTP_BYTES))
            fi
        done
    done
    rm -f "$src"
    R[rampart.cpu_sftp]=$(awk -v c="$rampart_cpu" -v n="$rampart_bytes" \
        'BEGIN { if (n > 0) printf "%.1f", c / (n / 1e9); else print "n/a" }')
}

# ----------------------------------------------------------- reporting ---

cell() { echo "${R[$1]:-FAIL}"; }
val() { echo "${R[$1]:-n/a}"; }

ratio() { # A B -> A/B with 2 decimals and an x, or n/a
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b == 0) { print "n/a"; exit }
        printf "%.2fx", a / b }'
}

added_ms() { # RAMPART DIRECT -> +N.NN ms
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a !~ /^-?[0-9.]+$/ || b !~ /^-?[0-9.]+$/) { print "n/a"; exit }
        printf "%+.2f ms", a - b }'
}

# judge VALUE OP LIMIT -> PASS, FAIL, or "not measured" when VALUE is not a
# number (a trailing x, ms, s or % is ignored).
judge() {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        sub(/^\+/, "", v); sub(/ *(x|ms|s|%|MB)$/, "", v)
        if (v !~ /^-?[0-9.]+$/) { print "not measured"; exit }
        ok = (op == "<=") ? (v + 0 <= l + 0) : (v + 0 >= l + 0)
        print ok ? "PASS" : "FAIL" }'
}

print_header() {
    echo
    echo "rampart SSH benchmark  ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load at start $LOAD_AT_START, $(ssh -V 2>&1 | cut -d, -f1))"
    echo "binary: $RAMPART"
    echo "loopback; target = OpenSSH sshd; ProxyJump via a second sshd; rampart with recording on"
    echo "client kex + cipher: direct ${KEX[direct]:-?}; ProxyJump ${KEX[proxyjump]:-?}; rampart ${KEX[rampart]:-?}"
    awk -v l="$LOAD_AT_START" 'BEGIN { if (l + 0 > 0.7) printf "warning: load average was %s at start: other work on the machine makes these figures noisy\n", l }'
    echo "settings: RUNS=$RUNS BYTES=$BYTES TEXT_BYTES=$TEXT_BYTES STREAMS=\"$STREAMS\" MODES=\"$MODES\"${SKIP:+ SKIP=\"$SKIP\"}"
}

print_streams() {
    local fmt='%-12s %-7s %9s %9s %9s %9s   %8s %8s %8s   %8s %8s %8s %8s\n' stream mode key p
    echo
    echo "throughput (MB/s; stream = from the stream's start on the target to ssh's exit, wall = the whole ssh command; median of $RUNS)"
    echo "and the time from the last byte of output to ssh's exit (s, median; rampart also the max)"
    # shellcheck disable=SC2059 # the format is a constant
    printf "$fmt" "" "" direct ProxyJump rampart "vs PJ" "wall:dir" "PJ" "rampart" "lag:dir" "PJ" "rampart" "max"
    for stream in $STREAMS; do
        for mode in $MODES; do
            key=$stream.$mode
            R[vs_pj.$key]=$(ratio "$(val "rampart.$key.stream")" "$(val "proxyjump.$key.stream")")
            # shellcheck disable=SC2059
            printf "$fmt" "${STREAM_LABEL[$stream]}" "${MODE_LABEL[$mode]}" \
                "$(cell "direct.$key.stream")" "$(cell "proxyjump.$key.stream")" "$(cell "rampart.$key.stream")" "${R[vs_pj.$key]}" \
                "$(cell "direct.$key.wall")" "$(cell "proxyjump.$key.wall")" "$(cell "rampart.$key.wall")" \
                "$(val "direct.$key.lag")" "$(val "proxyjump.$key.lag")" "$(val "rampart.$key.lag")" "$(val "rampart.$key.lag_max")"
        done
    done
    echo "streams: zeros = head -c $BYTES /dev/zero; random = cat of a $BYTES-byte file from /dev/urandom;"
    for p in seq syslog; do
        [[ -n ${STREAM_SIZE[$p]:-} ]] && echo "  $p = ${STREAM_CMD[$p]##*/} (${STREAM_SIZE[$p]} bytes, ${STREAM_NL[$p]} lines)"
    done
    echo "  (a pty adds a CR per LF; every run must deliver every byte and exit 0)"

    fmt='%-12s %-7s %11s %11s %10s %8s   %10s %10s %10s %11s\n'
    echo
    echo "costs per GB relayed: CPU (s/GB) and rampart's storage growth (MB/GB), after wait_indexed"
    # shellcheck disable=SC2059
    printf "$fmt" "" "" "rampart CPU" "incl. after" "jump sshd" "ratio" "database" "index" "db+index" "recordings"
    for stream in $STREAMS; do
        for mode in $MODES; do
            key=$stream.$mode
            R[cpu_ratio.$key]=$(ratio "$(val "rampart.$key.cpu")" "$(val "jump.$key.cpu")")
            # shellcheck disable=SC2059
            printf "$fmt" "${STREAM_LABEL[$stream]}" "${MODE_LABEL[$mode]}" \
                "$(val "rampart.$key.cpu")" "$(val "rampart.$key.cpu_all")" "$(val "jump.$key.cpu")" "${R[cpu_ratio.$key]}" \
                "$(val "rampart.$key.db")" "$(val "rampart.$key.index")" "$(val "rampart.$key.db_index")" "$(val "rampart.$key.rec")"
        done
    done
    echo "rampart CPU: utime+stime over its runs (work left over from one run lands in the next); incl. after: from the"
    echo "  first run until wait_indexed returned. jump sshd: listener utime+stime+cutime+cstime over the ProxyJump runs."
    echo "database: (page_count - freelist_count) * page_size; index: other files in the data dir; recordings: casts and sidecars"
}

print_other() {
    local fmt='%-34s %11s %11s %11s   %s\n' bulk_mb=$((BULK_BYTES / 1000000)) sftp_size
    sftp_size=$(awk -v b="$SFTP_BYTES" 'BEGIN { if (b % 1048576 == 0) printf "%d MiB", b / 1048576; else printf "%.0f MB", b / 1e6 }')
    echo
    if ! { skipped echo && skipped connect && skipped bulk && skipped sftp; }; then
        # shellcheck disable=SC2059 # the format is a constant
        printf "$fmt" "" direct ProxyJump rampart "rampart vs"
    fi
    skipped echo || {
        # shellcheck disable=SC2059
        printf "$fmt" "echo round-trip, median (ms)" "$(cell direct.echo_med)" "$(cell proxyjump.echo_med)" \
            "$(cell rampart.echo_med)" "$(added_ms "$(val rampart.echo_med)" "$(val direct.echo_med)") vs direct"
        # shellcheck disable=SC2059
        printf "$fmt" "echo round-trip, p99 (ms)" "$(cell direct.echo_p99)" "$(cell proxyjump.echo_p99)" \
            "$(cell rampart.echo_p99)" "$(added_ms "$(val rampart.echo_p99)" "$(val direct.echo_p99)") vs direct"
    }
    skipped connect || {
        # shellcheck disable=SC2059
        printf "$fmt" "connect, ssh HOST true, median (ms)" "$(cell direct.connect)" "$(cell proxyjump.connect)" \
            "$(cell rampart.connect)" "$(ratio "$(val rampart.connect)" "$(val direct.connect)") of direct (issue 3: <= 1.0x)"
    }
    skipped bulk || {
        # shellcheck disable=SC2059
        printf "$fmt" "bulk ${BULK_N} x ${bulk_mb} MB, completed" "$(cell direct.bulk)" "$(cell proxyjump.bulk)" \
            "$(cell rampart.bulk)" "(all must complete)"
        # shellcheck disable=SC2059
        printf "$fmt" "bulk ${BULK_N} x ${bulk_mb} MB, total (s)" "$(cell direct.bulk_s)" "$(cell proxyjump.bulk_s)" \
            "$(cell rampart.bulk_s)" "$(ratio "$(val rampart.bulk_s)" "$(val proxyjump.bulk_s)") of ProxyJump"
    }
    skipped sftp || {
        # shellcheck disable=SC2059
        printf "$fmt" "sftp get ${sftp_size} (MB/s)" "$(cell direct.sftp_get)" "$(cell proxyjump.sftp_get)" \
            "$(cell rampart.sftp_get)" "$(ratio "$(val rampart.sftp_get)" "$(val proxyjump.sftp_get)") of ProxyJump"
        # shellcheck disable=SC2059
        printf "$fmt" "sftp put ${sftp_size} (MB/s)" "$(cell direct.sftp_put)" "$(cell proxyjump.sftp_put)" \
            "$(cell rampart.sftp_put)" "$(ratio "$(val rampart.sftp_put)" "$(val proxyjump.sftp_put)") of ProxyJump"
    }
    skipped echo || echo "echo: $ECHO_KEYS keystrokes one at a time into dd bs=1 on a raw remote pty, login shell session"
    skipped connect || echo "connect: median of $CONNECTS"
    skipped sftp || echo "sftp: one get and one put of a random file, wall time of the sftp command"
    echo "skipped: ${SKIP:-nothing}"
    echo
    skipped load ||
        echo "second person, ssh HOST true (ms, median of $LOGINS): rampart $(val load.idle) idle, $(val load.busy) while one" \
            "streams ($(ratio "$(val load.busy)" "$(val load.idle)")); direct $(val load.idle_direct) idle, $(val load.busy_direct)" \
            "while one streams ($(ratio "$(val load.busy_direct)" "$(val load.idle_direct)")); rampart refused" \
            "$(val load.refused) of $(val load.tried) logins (not in the medians)"
    skipped load ||
        echo "the streaming session (pty, syslog-like file in a loop for ${LOAD_SECONDS}s): $(val load.mbps) MB/s," \
            "last byte to exit $(val load.lag) s"
    echo
    echo "rampart memory (VmRSS): $MEM_COLD kB just started, $MEM_START kB after one session (the start)," \
        "$MEM_END kB ${SETTLE_SECONDS}s after the last session ($(awk -v a="$MEM_COLD" -v b="$MEM_END" 'BEGIN {
            if (a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/ && a > 0) printf "%+.1f%%", (b - a) * 100 / a; else print "n/a" }')" \
        "over just started); peak (VmHWM) $MEM_PEAK kB"
    echo "  of which anonymous (RssAnon: heap, buffers, caches): $MEM_START_ANON kB at the start, $MEM_END_ANON kB after;" \
        "file-backed (RssFile: the binary's code and libraries paged in as they run): $MEM_START_FILE kB, $MEM_END_FILE kB"
    echo "rampart CPU: ${R[rampart.cpu_sftp]:-n/a} s/GB over sftp; $(cpu_seconds "$RAMPART_PID") s over the whole run"
}

# One line per target of issue 14: what, where, measured value, verdict.
print_summary() {
    local fmt='  %-52s %-26s %11s  %s\n' stream mode key v lags=() worst text verdict
    echo
    echo "summary: issue 14 targets"
    for stream in $STREAMS; do
        for mode in $MODES; do
            key=$stream.$mode
            verdict=$(judge "${R[vs_pj.$key]}" '>=' "$MIN_VS_PROXYJUMP")
            [[ -n ${R[rampart.$key.broken]:-} ]] && verdict="FAIL (${R[rampart.$key.broken]})"
            # shellcheck disable=SC2059 # the format is a constant
            printf "$fmt" "throughput >= ${MIN_VS_PROXYJUMP}x ProxyJump" "${STREAM_LABEL[$stream]}, ${MODE_LABEL[$mode]}" \
                "${R[vs_pj.$key]}" "$verdict"
        done
    done
    for stream in $STREAMS; do
        for mode in $MODES; do
            key=$stream.$mode
            # shellcheck disable=SC2059
            printf "$fmt" "CPU per GB <= ${MAX_CPU_RATIO}x the jump sshd's" "${STREAM_LABEL[$stream]}, ${MODE_LABEL[$mode]}" \
                "${R[cpu_ratio.$key]}" "$(judge "${R[cpu_ratio.$key]}" '<=' "$MAX_CPU_RATIO")"
        done
    done
    v=$(added_ms "$(val rampart.echo_med)" "$(val direct.echo_med)")
    # shellcheck disable=SC2059
    printf "$fmt" "echo added <= ${MAX_ECHO_ADDED_MS} ms at the median" "over direct" "$v" "$(judge "$v" '<=' "$MAX_ECHO_ADDED_MS")"
    v=$(ratio "$(val load.busy)" "$(val load.idle)")
    verdict=$(judge "$v" '<=' "$MAX_LOGIN_RATIO")
    # A refused login is worse than any slow one; the median above is of the
    # logins that got in.
    if ((${R[load.refused]:-0} > 0)); then
        verdict="FAIL (${R[load.refused]} of ${R[load.tried]} logins refused)"
    fi
    # shellcheck disable=SC2059
    printf "$fmt" "login + true <= ${MAX_LOGIN_RATIO}x idle while one streams" "rampart" "$v" "$verdict"
    for key in "${!R[@]}"; do
        [[ $key == rampart.*.lag_max ]] && lags+=("${R[$key]}")
    done
    [[ -n ${R[load.lag]:-} ]] && lags+=("${R[load.lag]}")
    worst=n/a
    ((${#lags[@]})) && worst="$(maximum "${lags[@]}") s"
    # shellcheck disable=SC2059
    printf "$fmt" "a streaming session exits <= ${MAX_EXIT_LAG} s after its last byte" "rampart, worst run" "$worst" \
        "$(judge "$worst" '<=' "$MAX_EXIT_LAG")"
    for stream in $STREAMS; do
        for mode in $MODES; do
            key=$stream.$mode
            v=${R[rampart.$key.db_index]:-n/a}
            if [[ $stream == seq || $stream == syslog ]]; then
                # MB per GB is bytes per byte x 1000.
                text=$(awk -v m="$v" 'BEGIN { if (m ~ /^-?[0-9.]+$/) printf "%.4f", m / 1000; else print "n/a" }')
                # shellcheck disable=SC2059
                printf "$fmt" "database + index <= $MAX_TEXT_GROWTH bytes per byte" "${STREAM_LABEL[$stream]}, ${MODE_LABEL[$mode]}" \
                    "$text" "$(judge "$text" '<=' "$MAX_TEXT_GROWTH")"
            else
                # shellcheck disable=SC2059
                printf "$fmt" "database + index <= $MAX_OTHER_MB_PER_GB MB per GB" "${STREAM_LABEL[$stream]}, ${MODE_LABEL[$mode]}" \
                    "$v MB" "$(judge "$v" '<=' "$MAX_OTHER_MB_PER_GB")"
            fi
        done
    done
    v=$(awk -v k="$MEM_PEAK" 'BEGIN { if (k ~ /^[0-9]+$/) printf "%.1f MB", k / 1024; else print "n/a" }')
    # shellcheck disable=SC2059
    printf "$fmt" "peak RSS <= ${MAX_PEAK_RSS_MB} MB" "whole run (VmHWM)" "$v" "$(judge "$v" '<=' "$MAX_PEAK_RSS_MB")"
    v=$(awk -v a="$MEM_START" -v b="$MEM_END" 'BEGIN {
        if (a ~ /^[0-9]+$/ && b ~ /^[0-9]+$/ && a > 0) printf "%+.1f%%", (b - a) * 100 / a; else print "n/a" }')
    # shellcheck disable=SC2059
    printf "$fmt" "RSS after the sessions <= start + ${MAX_RSS_GROWTH_PCT}%" "idle, vs after one session" "$v" \
        "$(judge "$v" '<=' "$MAX_RSS_GROWTH_PCT")"
}

print_failures() {
    local errors warnings
    errors=$(grep -c -E '\bERROR\b|panicked' "$TMP/rampart.log" || true)
    warnings=$(grep -c -E '\bWARN\b' "$TMP/rampart.log" || true)
    echo
    echo "rampart log: $errors error lines, $warnings warning lines"
    if ((${#FAILURES[@]} == 0)); then
        echo "failures: none"
        return
    fi
    echo "failures (${#FAILURES[@]}):"
    printf '  - %s\n' "${FAILURES[@]}"
    echo "rampart log (last 30 lines):"
    tail -n 30 "$TMP/rampart.log" | sed 's/^/    /'
    if [[ -s $TMP/ssh-errors.log ]]; then
        echo "ssh client errors (last 10 lines):"
        tail -n 10 "$TMP/ssh-errors.log" | sed 's/^/    /'
    fi
}

main() {
    check_prereqs
    LOAD_AT_START=$(cut -d' ' -f1 /proc/loadavg)
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    setup
    MEM_COLD=$(rss_kb "$RAMPART_PID" VmRSS)
    preflight
    sleep 1
    MEM_START=$(rss_kb "$RAMPART_PID" VmRSS)
    MEM_START_ANON=$(rss_kb "$RAMPART_PID" RssAnon)
    MEM_START_FILE=$(rss_kb "$RAMPART_PID" RssFile)
    prepare_streams
    measure_throughput
    if ! skipped echo; then
        log "keystroke echo ($ECHO_KEYS keystrokes per path)"
        measure_echo
    fi
    if ! skipped connect; then
        log "connect time ($CONNECTS per path)"
        measure_connect
    fi
    if ! skipped load; then
        log "second person: $LOGINS logins idle, then while one session streams"
        measure_load
    fi
    if ! skipped bulk; then
        log "bulk: $BULK_N x $((BULK_BYTES / 1000000)) MB per path"
        measure_bulk
    fi
    if ! skipped sftp; then
        log "sftp: get and put of $SFTP_BYTES bytes per path"
        measure_sftp
    fi
    kill -0 "$RAMPART_PID" 2>/dev/null || fail "rampart serve is no longer running"
    wait_indexed || true
    sleep "$SETTLE_SECONDS"
    MEM_END=$(rss_kb "$RAMPART_PID" VmRSS)
    MEM_END_ANON=$(rss_kb "$RAMPART_PID" RssAnon)
    MEM_END_FILE=$(rss_kb "$RAMPART_PID" RssFile)
    MEM_PEAK=$(rss_kb "$RAMPART_PID" VmHWM)
    print_header
    print_streams
    print_other
    print_summary
    print_failures
}

main "$@"
