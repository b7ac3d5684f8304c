#!/usr/bin/env bash
# Recordings to an S3-compatible bucket (issue 16): how fast a finished
# recording reaches the bucket, and what the spool holds while the bucket is
# down and how fast it drains once it is back.
#
#   cargo build --release && bash bench/objects.sh
#
# The bucket is moto's S3 server on loopback (pip install "moto[server]"),
# a Python server: the rates are a floor set by it, not by rampart. Each
# session runs `log LINES` on the demo target (coloured syslog-like text).
# Tunables: RAMPART (binary), LINES (per session, default 400000, about
# 40 MB of cast), DOWN_SESSIONS (sessions while the bucket is down, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."

RAMPART=${RAMPART:-$PWD/target/release/rampart}
LINES=${LINES:-400000}
DOWN_SESSIONS=${DOWN_SESSIONS:-3}
[[ -x $RAMPART ]] || { echo "objects.sh: $RAMPART not found: cargo build --release" >&2; exit 1; }
python3 -c "import moto.server" 2>/dev/null || { echo "objects.sh: pip install \"moto[server]\"" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rampart-objects.XXXXXX")
SERVE_PID= MOTO_PID=
cleanup() {
    [[ -n $SERVE_PID ]] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
    [[ -n $MOTO_PID ]] && kill "$MOTO_PID" 2>/dev/null && wait "$MOTO_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
now() { date +%s.%N; }
http() { # METHOD PATH: exit 0 when 2xx, 4 on 404
    python3 - "$1" "http://127.0.0.1:$S3_PORT/$2" <<'EOF'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(urllib.request.Request(sys.argv[2], method=sys.argv[1])).read()
except urllib.error.HTTPError as e:
    sys.exit(4 if e.code == 404 else 1)
EOF
}
start_s3() {
    python3 -m moto.server -H 127.0.0.1 -p "$S3_PORT" >/dev/null 2>&1 &
    MOTO_PID=$!
    wait_port "$S3_PORT" || { echo "moto did not start" >&2; exit 1; }
    http PUT recs
}
stop_s3() { kill "$MOTO_PID"; wait "$MOTO_PID" 2>/dev/null || true; MOTO_PID=; }

S3_PORT=$(free_port)
PORT=$(free_port)
start_s3
ssh-keygen -q -t ed25519 -N '' -C bench -f "$TMP/key"
cat >"$TMP/rampart.toml" <<EOF
data_dir = "$TMP/data"
[ssh]
listen = ["127.0.0.1:$PORT"]
[recording]
store = "s3://recs/bench"
s3_endpoint = "http://127.0.0.1:$S3_PORT"
s3_access_key_id = "bench"
s3_secret_access_key = "bench-secret"
EOF
export RAMPART_CONFIG=$TMP/rampart.toml
"$RAMPART" init >/dev/null 2>&1
"$RAMPART" serve --demo >"$TMP/serve.log" 2>&1 &
SERVE_PID=$!
wait_port "$PORT" || { echo "rampart did not start: $(tail -5 "$TMP/serve.log")" >&2; exit 1; }
"$RAMPART" user add bench --key-file "$TMP/key.pub" >/dev/null
"$RAMPART" perm add bench-demo --user bench --asset demo >/dev/null
sleep 1.5
SSH=(ssh -q -F /dev/null -i "$TMP/key" -p "$PORT" -o StrictHostKeyChecking=no
    -o UserKnownHostsFile=/dev/null -o BatchMode=yes bench@127.0.0.1)

session() { # runs one recorded session; prints its recording path
    "${SSH[@]}" demo log "$LINES" >/dev/null
    "$RAMPART" session list --json |
        python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["recording"]); sys.stdin.read()'
}
size() { stat -c %s "$TMP/data/recordings/$1"; }
spool_bytes() { du -sb "$TMP/data/recordings" | cut -f1; }

# 1. One session: from its end to its object in the bucket.
rec=$(session)
ended=$(now)
until http HEAD "recs/bench/$rec" 2>/dev/null; do sleep 0.05; done
took=$(echo "$(now) - $ended" | bc)
bytes=$(size "$rec")
rate=$(echo "scale=1; $bytes / 1048576 / $took" | bc)

# 2. The bucket down: sessions go on, the spool grows.
before=$(spool_bytes)
stop_s3
down=()
for _ in $(seq "$DOWN_SESSIONS"); do down+=("$(session)"); done
sleep 2
grown=$(( $(spool_bytes) - before ))
waiting=$("$RAMPART" session list --json | wc -l)

# 3. Back up: the spool drains (a new session kicks it at once).
start_s3
back=$(now)
session >/dev/null
for r in "${down[@]}"; do
    until http HEAD "recs/bench/$r" 2>/dev/null; do sleep 0.1; done
done
drained=$(echo "$(now) - $back" | bc)
down_bytes=0
for r in "${down[@]}"; do down_bytes=$((down_bytes + $(size "$r"))); done
drain_rate=$(echo "scale=1; $down_bytes / 1048576 / $drained" | bc)
"$RAMPART" audit verify >/dev/null || { echo "objects.sh: audit verify failed" >&2; exit 1; }

printf '\n%-44s %s\n' "upload after a session ($((bytes / 1048576)) MiB cast)" "$(printf '%.2f' "$took") s, $rate MiB/s"
printf '%-44s %s\n' "spool growth with the bucket down" "$((grown / 1048576)) MiB for $DOWN_SESSIONS sessions ($((down_bytes / 1048576)) MiB of casts)"
printf '%-44s %s\n' "spool drained once the bucket is back" "$(printf '%.2f' "$drained") s, $drain_rate MiB/s"
echo "(moto $(python3 -c 'import moto; print(moto.__version__)') on loopback; $waiting sessions in all; audit verify passed)"
