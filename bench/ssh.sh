#!/usr/bin/env bash
# SSH speed benchmark for rampart (issue 3, "Speed").
#
#   cargo build --release && bash bench/ssh.sh
#
# On loopback, against a real OpenSSH sshd as the target, it compares three
# ways of reaching that target, in one run:
#   direct     ssh straight to the target sshd
#   ProxyJump  ssh -J through a second, stock sshd used as jump host
#   rampart    ssh to `rampart serve` (recording on, the default), exec/shell
#              on asset `target`
# and prints one table: throughput of `head -c 200000000 /dev/zero` without
# and with a pty, keystroke echo round-trip, connect time for `true`, 50
# back-to-back bulk transfers that must all finish, and an sftp get and put
# of a 1 GiB file (through rampart with the target in the login name,
# `sftp bench@ACCOUNT@target@bastion`).
#
# Everything lives in a temp dir (two sshd configs and host keys, client and
# target keys, a rampart data dir) and is removed on exit; KEEP_TMP=1 keeps it.
# Every ssh runs under `timeout`, and a global time budget skips what is left
# rather than letting the run exceed ~10 minutes; failures are listed at the end.
#
# Tunables (environment): RAMPART (binary), SSHD, RUNS, BYTES, ECHO_KEYS,
# CONNECTS, BULK_N, BULK_BYTES, SFTP_BYTES, BUDGET_SECONDS, KEX_ALGORITHMS,
# THROUGHPUT_TIMEOUT, BULK_TIMEOUT, SFTP_TIMEOUT, KEEP_TMP.
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME and awk must use '.' as decimal separator

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RAMPART=${RAMPART:-$REPO/target/release/rampart}
SSHD=${SSHD:-/usr/sbin/sshd}
ECHO_HELPER=$REPO/bench/echo_rtt.py

RUNS=${RUNS:-3}                     # throughput runs per path and mode (median)
BYTES=${BYTES:-200000000}           # bytes per throughput run
ECHO_KEYS=${ECHO_KEYS:-1000}        # measured keystrokes per path
CONNECTS=${CONNECTS:-20}            # `ssh host true` per path (median)
BULK_N=${BULK_N:-50}                # back-to-back transfers per path
BULK_BYTES=${BULK_BYTES:-20000000}  # bytes per bulk transfer
SFTP_BYTES=${SFTP_BYTES:-1073741824} # size of the file each sftp get and put moves
BUDGET_SECONDS=${BUDGET_SECONDS:-540}
# Client key exchange for all paths, e.g. curve25519-sha256 to compare connect
# times on equal terms; empty: the client's default preference.
KEX_ALGORITHMS=${KEX_ALGORITHMS:-}

THROUGHPUT_TIMEOUT=${THROUGHPUT_TIMEOUT:-60} # per 200 MB run: below ~3.5 MB/s counts as a failure
BULK_TIMEOUT=${BULK_TIMEOUT:-30}       # per bulk transfer: a lost CHANNEL_CLOSE shows up here
SFTP_TIMEOUT=${SFTP_TIMEOUT:-180}      # per sftp transfer (1 GiB: below ~6 MB/s fails), capped by the budget
BULK_MAX_TIMEOUTS=3   # stop a path's bulk series after this many hangs
CONNECT_TIMEOUT=20

PATHS=(direct proxyjump rampart)
declare -A LABEL=([direct]=direct [proxyjump]=ProxyJump [rampart]=rampart)
declare -A R=()     # results: R[path.metric]
declare -A DEAD=()  # paths whose preflight failed
declare -A KEX=()   # key exchange and cipher each path's client negotiated
FAILURES=()
PIDS=()             # processes this script started (sshd x2, rampart)
TMP=""
RAMPART_PID=""
DEADLINE=$((SECONDS + BUDGET_SECONDS))

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { FAILURES+=("$*"); log "FAIL: $*"; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- setup ---

check_prereqs() {
    [[ -x $RAMPART ]] || die "$RAMPART not found: run 'cargo build --release' first"
    [[ -x $SSHD ]] || die "$SSHD not found: install openssh-server"
    local tool
    for tool in ssh sftp ssh-keygen python3 timeout awk sort stat df; do
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
    write_ssh_config "$target_port" "$jump_port" "$bastion_port"
    start_rampart "$bastion_port" "$target_port"
    log "target sshd :$target_port, jump sshd :$jump_port, rampart :$bastion_port (pid $RAMPART_PID), tmp $TMP"
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

rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo "?"; }
cpu_seconds() { # utime + stime of a process, in seconds
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' \
        "/proc/$1/stat" 2>/dev/null || echo "?"
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

# Throughput of `head -c BYTES /dev/zero` with output to /dev/null, two ways:
#   wall    the whole ssh command, connection set-up included, as a person
#           would time it;
#   stream  from the moment `head` starts on the target to ssh's exit: the
#           data phase alone, so that differing connect times (rampart
#           reuses its upstream connection; ProxyJump sets up two) do not
#           blur the relay's own speed. The target is this machine, so the
#           remote command simply writes its start time into a file here.
# Runs are interleaved across paths so that drift in machine load hits all
# three alike.
mbps() { awk -v b="$BYTES" -v t="$(elapsed "$1" "$2")" 'BEGIN { printf "%.1f", b / 1e6 / t }'; }

measure_throughput() { # MODE (nopty|pty)
    local mode=$1 tty=() run path t0 t1 ts status stamp=$TMP/stream-start
    [[ $mode == pty ]] && tty=(-tt)
    declare -A wall=() stream=() broken=()
    local cpu0 bytes0=$RAMPART_BYTES
    cpu0=$(cpu_seconds "$RAMPART_PID")
    for ((run = 1; run <= RUNS; run++)); do
        for path in "${PATHS[@]}"; do
            [[ -n ${DEAD[$path]:-} || -n ${broken[$path]:-} ]] && continue
            budget_ok || { fail "throughput $mode ${LABEL[$path]}: skipped, time budget spent"; continue; }
            rm -f "$stamp"
            status=0
            t0=$EPOCHREALTIME
            run_ssh "$THROUGHPUT_TIMEOUT" "$path" "${tty[@]}" -- \
                "date +%s.%N >$stamp; head -c $BYTES /dev/zero" \
                </dev/null >/dev/null 2>>"$TMP/ssh-errors.log" || status=$?
            t1=$EPOCHREALTIME
            if ((status != 0)); then
                broken[$path]=1
                fail "throughput $mode ${LABEL[$path]} run $run: ssh exit $status (124: timed out after ${THROUGHPUT_TIMEOUT}s)"
                continue
            fi
            wall[$path]+=" $(mbps "$t0" "$t1")"
            ts=$(cat "$stamp" 2>/dev/null || true)
            [[ -n $ts ]] && stream[$path]+=" $(mbps "$ts" "$t1")"
            [[ $path == rampart ]] && RAMPART_BYTES=$((RAMPART_BYTES + BYTES))
        done
    done
    for path in "${PATHS[@]}"; do
        [[ -z ${broken[$path]:-} && -n ${wall[$path]:-} ]] || continue
        # shellcheck disable=SC2086 # the samples are a space-separated list
        R[$path.wall_$mode]=$(median ${wall[$path]})
        # shellcheck disable=SC2086
        [[ -n ${stream[$path]:-} ]] && R[$path.stream_$mode]=$(median ${stream[$path]})
        log "throughput $mode ${LABEL[$path]}: wall${wall[$path]} MB/s; stream${stream[$path]:- ?} MB/s"
    done
    # rampart's own CPU cost of relaying (and recording) one GB in this mode.
    R[rampart.cpu_$mode]=$(awk -v a="$cpu0" -v b="$(cpu_seconds "$RAMPART_PID")" \
        -v n="$((RAMPART_BYTES - bytes0))" 'BEGIN { if (n > 0) printf "%.1f", (b - a) / (n / 1e9); else print "n/a" }')
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
                [[ $path == rampart ]] && RAMPART_BYTES=$((RAMPART_BYTES + BULK_BYTES))
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

cell() { echo "${R[$1.$2]:-FAIL}"; }

ratio() { # A B -> A/B with 2 decimals, or n/a
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b == 0) { print "n/a"; exit }
        printf "%.2fx", a / b }'
}

added_ms() { # RAMPART DIRECT -> +N.NN ms
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/) { print "n/a"; exit }
        printf "%+.2f ms", a - b }'
}

print_table() {
    local fmt='%-34s %11s %11s %11s   %-24s %s\n'
    local mb=$((BYTES / 1000000)) bulk_mb=$((BULK_BYTES / 1000000)) sftp_size
    sftp_size=$(awk -v b="$SFTP_BYTES" 'BEGIN { if (b % 1048576 == 0) printf "%d MiB", b / 1048576; else printf "%.0f MB", b / 1e6 }')
    echo
    echo "rampart SSH benchmark  ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load at start $LOAD_AT_START, $(ssh -V 2>&1 | cut -d, -f1))"
    echo "loopback; target = OpenSSH sshd; ProxyJump via a second sshd; rampart with recording on"
    echo "client kex + cipher: direct ${KEX[direct]:-?}; ProxyJump ${KEX[proxyjump]:-?}; rampart ${KEX[rampart]:-?}"
    awk -v l="$LOAD_AT_START" 'BEGIN { if (l + 0 > 0.7) printf "warning: load average was %s at start: other work on the machine makes these figures noisy\n", l }'
    echo
    # shellcheck disable=SC2059 # the format is a constant
    printf "$fmt" "" direct ProxyJump rampart "rampart vs" "aim (issue 3)"
    # shellcheck disable=SC2059
    printf "$fmt" "throughput no pty, stream (MB/s)" "$(cell direct stream_nopty)" "$(cell proxyjump stream_nopty)" \
        "$(cell rampart stream_nopty)" "$(ratio "$(cell rampart stream_nopty)" "$(cell proxyjump stream_nopty)") of ProxyJump" ">= 1.2x"
    # shellcheck disable=SC2059
    printf "$fmt" "throughput no pty, wall (MB/s)" "$(cell direct wall_nopty)" "$(cell proxyjump wall_nopty)" \
        "$(cell rampart wall_nopty)" "$(ratio "$(cell rampart wall_nopty)" "$(cell proxyjump wall_nopty)") of ProxyJump" ">= 1.2x"
    # shellcheck disable=SC2059
    printf "$fmt" "throughput pty, stream (MB/s)" "$(cell direct stream_pty)" "$(cell proxyjump stream_pty)" \
        "$(cell rampart stream_pty)" "$(ratio "$(cell rampart stream_pty)" "$(cell proxyjump stream_pty)") of ProxyJump" ">= 1.0x"
    # shellcheck disable=SC2059
    printf "$fmt" "throughput pty, wall (MB/s)" "$(cell direct wall_pty)" "$(cell proxyjump wall_pty)" \
        "$(cell rampart wall_pty)" "$(ratio "$(cell rampart wall_pty)" "$(cell proxyjump wall_pty)") of ProxyJump" ">= 1.0x"
    # shellcheck disable=SC2059
    printf "$fmt" "echo round-trip, median (ms)" "$(cell direct echo_med)" "$(cell proxyjump echo_med)" \
        "$(cell rampart echo_med)" "$(added_ms "$(cell rampart echo_med)" "$(cell direct echo_med)") vs direct" ""
    # shellcheck disable=SC2059
    printf "$fmt" "echo round-trip, p99 (ms)" "$(cell direct echo_p99)" "$(cell proxyjump echo_p99)" \
        "$(cell rampart echo_p99)" "$(added_ms "$(cell rampart echo_p99)" "$(cell direct echo_p99)") vs direct" ""
    # shellcheck disable=SC2059
    printf "$fmt" "connect, ssh HOST true, median (ms)" "$(cell direct connect)" "$(cell proxyjump connect)" \
        "$(cell rampart connect)" "$(ratio "$(cell rampart connect)" "$(cell direct connect)") of direct" "<= 1.0x"
    # shellcheck disable=SC2059
    printf "$fmt" "bulk ${BULK_N} x ${bulk_mb} MB, completed" "$(cell direct bulk)" "$(cell proxyjump bulk)" \
        "$(cell rampart bulk)" "" "all"
    # shellcheck disable=SC2059
    printf "$fmt" "bulk ${BULK_N} x ${bulk_mb} MB, total (s)" "$(cell direct bulk_s)" "$(cell proxyjump bulk_s)" \
        "$(cell rampart bulk_s)" "$(ratio "$(cell rampart bulk_s)" "$(cell proxyjump bulk_s)") of ProxyJump" ""
    # shellcheck disable=SC2059
    printf "$fmt" "sftp get ${sftp_size} (MB/s)" "$(cell direct sftp_get)" "$(cell proxyjump sftp_get)" \
        "$(cell rampart sftp_get)" "$(ratio "$(cell rampart sftp_get)" "$(cell proxyjump sftp_get)") of ProxyJump" ""
    # shellcheck disable=SC2059
    printf "$fmt" "sftp put ${sftp_size} (MB/s)" "$(cell direct sftp_put)" "$(cell proxyjump sftp_put)" \
        "$(cell rampart sftp_put)" "$(ratio "$(cell rampart sftp_put)" "$(cell proxyjump sftp_put)") of ProxyJump" ""
    echo
    echo "throughput: head -c $mb MB /dev/zero, median of $RUNS; stream = from head's start on the target to ssh's exit," \
        "wall = the whole ssh command, connection set-up included"
    echo "echo: $ECHO_KEYS keystrokes one at a time into dd bs=1 on a raw remote pty, login shell session"
    echo "connect: median of $CONNECTS"
    echo "sftp: one get and one put of a $SFTP_BYTES-byte random file per path, wall time of the sftp command;" \
        "rampart with the target in the login name (bench@$USER_NAME@target)"
    echo
    echo "rampart memory (VmRSS): ${MEM_BEFORE} kB before throughput, ${MEM_AFTER} kB after throughput," \
        "$(rss_kb "$RAMPART_PID" VmRSS) kB at the end; peak (VmHWM) $(rss_kb "$RAMPART_PID" VmHWM) kB"
    echo "rampart CPU per GB relayed: ${R[rampart.cpu_nopty]:-n/a} s without pty, ${R[rampart.cpu_pty]:-n/a} s with pty," \
        "${R[rampart.cpu_sftp]:-n/a} s over sftp;" \
        "$(cpu_seconds "$RAMPART_PID") s over the whole run"
    local rec
    rec=$(du -sb "$TMP/data/recordings" 2>/dev/null | cut -f1)
    echo "recordings: ${rec:-0} bytes on disk for $RAMPART_BYTES bytes relayed by the measured rampart transfers" \
        "($(ratio "${rec:-0}" "$RAMPART_BYTES"))"
}

print_failures() {
    local errors warnings
    errors=$(grep -c -E '\bERROR\b|panicked' "$TMP/rampart.log" || true)
    warnings=$(grep -c -E '\bWARN\b' "$TMP/rampart.log" || true)
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
    RAMPART_BYTES=0
    preflight
    MEM_BEFORE=$(rss_kb "$RAMPART_PID" VmRSS)
    log "throughput without pty ($RUNS x $((BYTES / 1000000)) MB per path)"
    measure_throughput nopty
    log "throughput with pty"
    measure_throughput pty
    MEM_AFTER=$(rss_kb "$RAMPART_PID" VmRSS)
    log "keystroke echo ($ECHO_KEYS keystrokes per path)"
    measure_echo
    log "connect time ($CONNECTS per path)"
    measure_connect
    log "bulk: $BULK_N x $((BULK_BYTES / 1000000)) MB per path"
    measure_bulk
    log "sftp: get and put of $SFTP_BYTES bytes per path"
    measure_sftp
    kill -0 "$RAMPART_PID" 2>/dev/null || fail "rampart serve is no longer running"
    print_table
    echo
    print_failures
}

main "$@"
