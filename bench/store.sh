#!/usr/bin/env bash
# The store's engines side by side (issue 16): a person's login plus one
# command (`ssh bench@bastion demo echo ok`, key login, recorded exec on the
# demo target) and an admin's change through the CLI (`rampart group add`),
# with the database on SQLite and on PostgreSQL, in one run.
#
#   cargo build --release && bash bench/store.sh
#
# PostgreSQL is a throwaway server on loopback (tests/with_postgres.sh; needs
# PostgreSQL's server programs), with fsync on, as in production. Tunables:
# RAMPART (binary), LOGINS (per engine, default 40), CHANGES (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."

RAMPART=${RAMPART:-$PWD/target/release/rampart}
LOGINS=${LOGINS:-40}
CHANGES=${CHANGES:-20}
[[ -x $RAMPART ]] || { echo "store.sh: $RAMPART not found: cargo build --release" >&2; exit 1; }

if [[ -z ${RAMPART_TEST_POSTGRES:-} ]]; then
    RAMPART_PG_FSYNC=1 exec bash tests/with_postgres.sh bash "$0" "$@"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rampart-store.XXXXXX")
SERVE_PID=
cleanup() {
    [[ -n $SERVE_PID ]] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
ssh-keygen -q -t ed25519 -N '' -C bench -f "$TMP/key"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
# median and 90th percentile of the numbers on stdin
stats() { sort -n | awk '{ a[NR] = $1 } END { printf "%d %d", a[int((NR + 1) / 2)], a[int(NR * 0.9 + 0.5)] }'; }

declare -A R
run_engine() { # NAME URL
    local name=$1 url=$2 dir=$TMP/$1 port
    port=$(free_port)
    mkdir -p "$dir"
    cat >"$dir/rampart.toml" <<EOF
data_dir = "data"
[ssh]
listen = ["127.0.0.1:$port"]
[database]
url = "$url"
EOF
    export RAMPART_CONFIG=$dir/rampart.toml
    (cd "$dir" && "$RAMPART" init >/dev/null 2>&1)
    (cd "$dir" && exec "$RAMPART" serve --demo >"$dir/serve.log" 2>&1) &
    SERVE_PID=$!
    for _ in $(seq 100); do
        "$RAMPART" asset show demo >/dev/null 2>&1 && break
        sleep 0.1
    done
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    "$RAMPART" user add bench --key-file "$TMP/key.pub" >/dev/null
    "$RAMPART" perm add bench-demo --user bench --asset demo >/dev/null
    sleep 1.5 # the server reloads policy within a second
    local ssh=(ssh -q -F /dev/null -i "$TMP/key" -p "$port" -o StrictHostKeyChecking=no
        -o UserKnownHostsFile=/dev/null -o BatchMode=yes bench@127.0.0.1)
    for _ in 1 2 3; do "${ssh[@]}" demo echo ok >/dev/null; done # warm-up
    local samples=() t
    for _ in $(seq "$LOGINS"); do
        t=$(now_ms)
        [[ $("${ssh[@]}" demo echo ok) == ok ]] || { echo "store.sh: $name: a login failed" >&2; exit 1; }
        samples+=($(($(now_ms) - t)))
    done
    R[$name.login]=$(printf '%s\n' "${samples[@]}" | stats)
    samples=()
    for i in $(seq "$CHANGES"); do
        t=$(now_ms)
        "$RAMPART" group add "g$i" >/dev/null
        samples+=($(($(now_ms) - t)))
    done
    R[$name.change]=$(printf '%s\n' "${samples[@]}" | stats)
    "$RAMPART" audit verify >/dev/null || { echo "store.sh: $name: audit verify failed" >&2; exit 1; }
    kill "$SERVE_PID"
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=
}

admin=$RAMPART_TEST_POSTGRES
psql "$admin" -q -c "CREATE DATABASE rampart_bench" >/dev/null
run_engine sqlite "sqlite://rampart.db"
run_engine postgres "${admin%/*}/rampart_bench"

printf '\n%-10s  %-30s  %-30s\n' engine "login + exec, ms (median p90)" "CLI change, ms (median p90)"
for e in sqlite postgres; do
    printf '%-10s  %-30s  %-30s\n' "$e" "${R[$e.login]}" "${R[$e.change]}"
done
echo "($LOGINS logins, $CHANGES changes per engine; $("$RAMPART" --version 2>/dev/null || echo rampart))"
