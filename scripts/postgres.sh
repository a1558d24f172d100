#!/usr/bin/env bash
# Start a local PostgreSQL on 127.0.0.1:5432 for the store tests and print the URL to use:
#   eval "$(bash scripts/postgres.sh)"     # exports CIE_TEST_POSTGRES_URL
# Installs Debian's `postgresql` when missing (root or passwordless sudo). Idempotent: an
# already running cluster is reused, the role and database are created once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/deps.sh
source scripts/deps.sh
ensure_apt postgresql >&2

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
as_pg() { as_root runuser -u postgres -- "$@"; }

ver="$(ls /usr/lib/postgresql | sort -n | tail -1)"
if ! as_root pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main"' | grep -q .; then
    as_root pg_createcluster "$ver" main >&2
fi
if ! as_root pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main" && $4 == "online"' | grep -q .; then
    as_root pg_ctlcluster "$ver" main start >&2
fi
for _ in $(seq 1 50); do
    as_pg pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 0.2
done
as_pg psql -q -h /var/run/postgresql -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'cie'" | grep -q 1 \
    || as_pg psql -q -h /var/run/postgresql -c "CREATE ROLE cie LOGIN SUPERUSER PASSWORD 'cie'" >&2
as_pg psql -q -h /var/run/postgresql -tAc "SELECT 1 FROM pg_database WHERE datname = 'cie_test'" | grep -q 1 \
    || as_pg createdb -h /var/run/postgresql -O cie cie_test >&2
echo "export CIE_TEST_POSTGRES_URL=postgres://cie:cie@127.0.0.1:5432/cie_test"
