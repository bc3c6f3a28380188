#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster (Debian's postgresql package): initdb in
# a temp directory, a free loopback port, default durability settings (fsync on), stopped on
# exit by its own pg_ctl. The command sees BEIAN_BENCH_BACKEND=postgres and
# BEIAN_BENCH_DATABASE_URL (the maintenance database; the bench creates its own databases).
#
#   bash benches/with-postgres.sh cargo bench --bench registry
set -euo pipefail
pg_bin="$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -1)")"
pg_dir="$(mktemp -d)"
as_pg=()
if [ "$(id -u)" = 0 ]; then
    chown postgres: "$pg_dir"
    as_pg=(runuser -u postgres --)
fi
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust -E UTF8 --locale=C >/dev/null
stop_pg() { "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$pg_dir"; }
trap stop_pg EXIT
started=""
for port in $(shuf -i 20000-60000 -n 20); do
    if "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
        -o "-p $port -c listen_addresses=127.0.0.1 -k $pg_dir -c shared_buffers=1GB" \
        start >/dev/null; then
        started=1
        break
    fi
done
[ -n "$started" ] || { cat "$pg_dir/server.log"; exit 1; }
echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (fsync on)" >&2
BEIAN_BENCH_BACKEND=postgres \
BEIAN_BENCH_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres" \
    "$@"
