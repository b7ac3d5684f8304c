#!/usr/bin/env bash
# The load generator against two nodes sharing one PostgreSQL database
# (issue 16): `cargo bench --bench load -- --nodes 2`, with a throwaway
# PostgreSQL server on loopback (tests/with_postgres.sh; fsync on, as in
# production) and an empty database in it.
#
#   bash bench/load_cluster.sh [--sessions N] [--lines K] ...
#
# Arguments go to the load generator (see benches/load.rs). Prints its
# table: sessions per second accepted, memory per session (the two nodes'
# summed), CPU, and every recording checked byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z ${RAMPART_TEST_POSTGRES:-} ]]; then
    RAMPART_PG_FSYNC=1 exec bash tests/with_postgres.sh bash "$0" "$@"
fi
admin=$RAMPART_TEST_POSTGRES
db=rampart_load_$$
psql "$admin" -q -c "CREATE DATABASE $db" >/dev/null
trap 'psql "$admin" -q -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true' EXIT
cargo bench --bench load -- --nodes 2 --database "${admin%/*}/$db" "$@"
