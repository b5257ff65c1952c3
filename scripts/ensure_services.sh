# Sourced by scripts/test: make a PostgreSQL server reachable for the tests and export its URL in
# GRIDFLEX_TEST_POSTGRES_URL. Order: an URL the caller already set; the machine's running server;
# the machine's installed but stopped cluster (started); else PostgreSQL installed from Debian's
# packages. SQLite needs nothing.

pg_url_ok() {
  python3 - "$1" <<'PY' >/dev/null 2>&1
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PY
}

if [ -n "${GRIDFLEX_TEST_POSTGRES_URL:-}" ] && pg_url_ok "$GRIDFLEX_TEST_POSTGRES_URL"; then
  :
else
  url="postgresql://postgres@127.0.0.1:5432/postgres"
  if ! pg_url_ok "$url"; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
      echo "scripts/test: starting the local PostgreSQL cluster" >&2
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    elif command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      echo "scripts/test: installing PostgreSQL from Debian's packages" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      ver=$(ls /etc/postgresql | head -1)
      sed -i 's/^\(local\|host\)\(.*\)\(peer\|scram-sha-256\|md5\)$/\1\2trust/' /etc/postgresql/"$ver"/main/pg_hba.conf
      pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    fi
    for _ in $(seq 1 20); do pg_url_ok "$url" && break; sleep 0.5; done
  fi
  if pg_url_ok "$url"; then
    export GRIDFLEX_TEST_POSTGRES_URL="$url"
  else
    echo "scripts/test: no PostgreSQL server could be reached or started; PostgreSQL tests will fail" >&2
    export GRIDFLEX_TEST_POSTGRES_URL="$url"
  fi
fi
