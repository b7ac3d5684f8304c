#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server on loopback, and
# RAMPART_TEST_POSTGRES set to its administrator's url: the integration tests
# then keep every test bastion's state in a fresh database of that server.
#
#   bash tests/with_postgres.sh cargo test --test '*'
#
# Needs PostgreSQL's server programs (Debian: apt install postgresql). The
# cluster lives in a temp dir, listens on 127.0.0.1 only, and is removed at
# exit. As root it runs as `nobody` (initdb refuses root).
set -euo pipefail

bin=""
if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    bin="$(dirname "$(command -v pg_ctl)")"
else
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && bin="$dir"
    done
fi
if [ -z "$bin" ]; then
    echo "with_postgres: PostgreSQL's initdb and pg_ctl are not installed (apt install postgresql)" >&2
    exit 1
fi

port="${RAMPART_TEST_POSTGRES_PORT:-54329}"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    if [ -n "${RAMPART_TEST_POSTGRES_PORT:-}" ]; then
        echo "with_postgres: port $port on 127.0.0.1 is taken" >&2
        exit 1
    fi
    # The default is taken (another server): any free port will do.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi

dir="$(mktemp -d /tmp/rampart-pg.XXXXXX)"
as=()
if [ "$(id -u)" = 0 ]; then
    chown nobody "$dir"
    as=(runuser -u nobody --)
fi
stop() {
    echo "with_postgres: the cluster used $(du -sh "$dir" 2>/dev/null | cut -f1)" >&2
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT

"${as[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
}
# fsync off: a test server whose data is thrown away (RAMPART_PG_FSYNC=1
# keeps PostgreSQL's durable defaults, for benchmarks). Enough connections
# for the tests running in parallel, each bastion with its own pool.
durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=256MB"
[ "${RAMPART_PG_FSYNC:-}" = 1 ] && durability=""
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o \
    "-c listen_addresses=127.0.0.1 -p $port -k $dir $durability -c max_connections=400" \
    start >/dev/null || {
    cat "$dir/server.log" >&2
    exit 1
}

export RAMPART_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres"
echo "with_postgres: PostgreSQL $("$bin/pg_ctl" --version | awk '{print $3}') at $RAMPART_TEST_POSTGRES" >&2
"$@"
