#!/usr/bin/env bash
# Run a command with $FYERS_STORE_BENCH_PG_DSN set: the caller's, or a throwaway PostgreSQL cluster
# (tests/support/pg_cluster.py, Debian's binaries) started here and stopped on exit. Without
# PostgreSQL binaries the command runs without it (the PostgreSQL rows are then left out).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${FYERS_STORE_BENCH_PG_DSN:-}" ]; then
    exec "$@"
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    echo "benchmarks: no PostgreSQL binaries; PostgreSQL rows are skipped" >&2
    exec "$@"
fi
PG_DIR="$(mktemp -d /tmp/fyers-bench-pg.XXXXXX)"
trap 'python3 tests/support/pg_cluster.py stop "$PG_DIR"' EXIT
FYERS_STORE_BENCH_PG_DSN="$(python3 tests/support/pg_cluster.py start "$PG_DIR" | sed -e "s/^export FYERS_STORE_TEST_PG_DSN='//" -e "s/'$//")"
export FYERS_STORE_BENCH_PG_DSN
"$@"
