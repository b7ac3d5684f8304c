#!/usr/bin/env bash
# Screen-text search benchmark (issue 14): GB gigabytes of recorded pty
# sessions, indexed by `rampart serve` in the background, then searched.
#
#   cargo build --release && bash bench/search.sh
#
# bench/search_data.py writes SESSIONS casts of syslog-like text with colours
# (and their session rows) into a fresh data dir; `rampart serve` indexes
# them (its indexer reads at most 32 MiB/s at nice 19). The script prints
# how long indexing took, rampart's CPU for it, the database's growth per GB
# of recordings, and the wall time of `rampart audit screen TEXT` (a whole
# CLI process: open the data dir, ask the index, read the candidate blocks)
# for a text found once, a text in every session, a common word, a two-letter
# text and a text found nowhere, each the median of 3, with the hit count and
# the notes the CLI printed.
#
# Tunables: RAMPART, GB (default 10), SESSIONS (default 100), INDEX_MAX_SECONDS
# (default 1800), KEEP_TMP. Needs about GB * 1.1 GB free in TMPDIR.
set -euo pipefail
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RAMPART=${RAMPART:-$REPO/target/release/rampart}
GB=${GB:-10}
SESSIONS=${SESSIONS:-100}
INDEX_MAX_SECONDS=${INDEX_MAX_SECONDS:-1800}

log() { printf '[search %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
[[ -x $RAMPART ]] || { log "$RAMPART not found: cargo build --release"; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rampart-search.XXXXXX")
PID=""
cleanup() {
    [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    if [[ -n ${KEEP_TMP:-} ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATA=$TMP/data
cat >"$TMP/rampart.toml" <<EOF
data_dir = "$DATA"
[ssh]
listen = ["127.0.0.1:$PORT"]
EOF
R() { "$RAMPART" --config "$TMP/rampart.toml" "$@"; }
R init >/dev/null 2>&1
used() {
    python3 - "$DATA/rampart.db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
q = lambda p: c.execute("PRAGMA " + p).fetchone()[0]
print((q("page_count") - q("freelist_count")) * q("page_size"))
EOF
}
before=$(used)

log "writing $GB GB of recordings in $SESSIONS sessions"
t0=$SECONDS
python3 "$REPO/bench/search_data.py" "$DATA" "$GB" "$SESSIONS" >"$TMP/needles"
rec_bytes=$(du -sb "$DATA/recordings" | cut -f1)
log "written in $((SECONDS - t0)) s: $rec_bytes bytes of casts"

ticks=$(getconf CLK_TCK)
cpu() { awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
"$RAMPART" --config "$TMP/rampart.toml" serve >"$TMP/serve.log" 2>&1 &
PID=$!
sleep 1
cpu0=$(cpu "$PID")
t0=$EPOCHREALTIME
deadline=$((SECONDS + INDEX_MAX_SECONDS))
while :; do
    done_n=$(python3 -c "
import sqlite3; c=sqlite3.connect('file:$DATA/rampart.db?mode=ro', uri=True)
print(c.execute('SELECT COUNT(*) FROM search_progress WHERE done = 1').fetchone()[0])")
    [[ $done_n -ge $SESSIONS ]] && break
    if ((SECONDS > deadline)); then log "FAIL: only $done_n of $SESSIONS sessions indexed in $INDEX_MAX_SECONDS s"; exit 1; fi
    sleep 2
done
index_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
index_cpu=$(awk -v a="$cpu0" -v b="$(cpu "$PID")" 'BEGIN{printf "%.1f", b-a}')
rss=$(awk '/VmHWM/{print $2}' "/proc/$PID/status")
after=$(used)
growth=$((after - before))

search() { # TEXT -> "median_s hits notes"
    local text=$1 s times=() hits notes
    for _ in 1 2 3; do
        s=$EPOCHREALTIME
        R audit screen --limit 100 "$text" >"$TMP/out" 2>"$TMP/err" || true
        times+=("$(awk -v a="$s" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.3f", b-a}')")
    done
    hits=$(($(wc -l <"$TMP/out") - 1))
    ((hits < 0)) && hits=0
    notes=$(tr '\n' ' ' <"$TMP/err" | cut -c1-110)
    printf '%s %s %s\n' "$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)" "$hits" "$notes"
}

one=$(awk 'NR==42{print $2}' "$TMP/needles")
one=${one:-$(awk 'NR==1{print $2}' "$TMP/needles")}
printf '\nrampart screen-text search: %s GB of pty recordings in %s sessions (%s bytes of casts)\n' "$GB" "$SESSIONS" "$rec_bytes"
printf 'indexing: %s s wall, %s s of rampart CPU, peak RSS %s kB; database grew by %s bytes = %.4f bytes per byte of recording\n\n' \
    "$index_s" "$index_cpu" "$rss" "$growth" "$(awk -v g="$growth" -v r="$rec_bytes" 'BEGIN{print g/r}')"
printf '%-34s %10s %6s  %s\n' "search (rampart audit screen)" "wall s" "hits" "notes on stderr"
for q in "RARE-TOKEN-7f3a9c" "$one" "NEEDLE-" "quota exceeded" "upstream" "ab" "no-such-text-0xdeadbeef"; do
    read -r t h n < <(search "$q")
    printf '%-34s %10s %6s  %s\n' "$q" "$t" "$h" "$n"
done
