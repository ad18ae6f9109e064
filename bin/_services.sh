# Sourced by bin/test: the local PostgreSQL and Redis the tests expect, installed from Debian's
# packages and started where they are missing. Every function returns non-zero instead of
# aborting: bin/test runs under `set -euo pipefail`, and set -e is off inside a function
# called as a condition, so each step that can fail says `|| return 1` itself.

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
PG_DEFAULT_URL="postgres://postgres@127.0.0.1:5432/test"
REDIS_DEFAULT_URL="redis://127.0.0.1:6379/15"

# apt_install PACKAGE...: Debian's packages, without a prompt or a terminal.
apt_install() {
  $SUDO apt-get update -qq </dev/null || return 1
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" </dev/null >/dev/null
}

# tcp_answers HOST PORT: something accepts a TCP connection there.
tcp_answers() {
  python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()' \
    "$1" "$2" 2>/dev/null
}

# redis_answers HOST PORT: a Redis server answers PING there.
redis_answers() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(redis-cli -h "$1" -p "$2" ping 2>/dev/null)" = PONG ]
  else
    python3 - "$1" "$2" <<'PY' 2>/dev/null
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as s:
    s.sendall(b"PING\r\n")
    sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
PY
  fi
}

# setup_redis [PORT]: a Redis on 127.0.0.1:PORT (6379), installed and started if none answers.
setup_redis() {
  local port="${1:-6379}" tries
  redis_answers 127.0.0.1 "$port" && return 0
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "Installing Debian's redis-server..." >&2
    apt_install redis-server || return 1
    # The package may have started its own service.
    redis_answers 127.0.0.1 "$port" && return 0
  fi
  echo "Starting redis-server on 127.0.0.1:$port..." >&2
  $SUDO mkdir -p /var/lib/redis /var/log/redis || return 1
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$port" --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || return 1
  for tries in 1 2 3 4 5 6 7 8 9 10; do
    redis_answers 127.0.0.1 "$port" && return 0
    sleep 0.5
  done
  return 1
}

# pg_connects URL: PostgreSQL accepts that URL (psycopg from the project's environment).
pg_connects() {
  "${UV[@]}" run --frozen python - "$1" <<'PY' 2>/dev/null
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PY
}

# pg_start_clusters: start every stopped local cluster (e.g. after a reboot).
pg_start_clusters() {
  local version
  command -v pg_ctlcluster >/dev/null 2>&1 || return 0
  for version in $(ls /etc/postgresql 2>/dev/null); do
    [ -d "/etc/postgresql/$version/main" ] || continue
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
  done
}

# setup_postgres: database `test` on 127.0.0.1:5432 for user postgres without a password.
# Installs Debian's postgresql and creates its cluster only when nothing listens there; only
# a cluster made here gets `trust` for 127.0.0.1 in pg_hba.conf, an existing one is never edited.
setup_postgres() {
  local admin="postgres://postgres@127.0.0.1:5432/postgres" ours="" version hba
  pg_connects "$PG_DEFAULT_URL" && return 0
  tcp_answers 127.0.0.1 5432 || pg_start_clusters
  if ! tcp_answers 127.0.0.1 5432; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
      echo "Installing Debian's postgresql..." >&2
      apt_install postgresql || return 1
      ours=1
    fi
    version="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$version" ] || return 1
    if [ ! -d "/etc/postgresql/$version/main" ]; then
      $SUDO pg_createcluster "$version" main >/dev/null || return 1
      ours=1
    fi
    echo "Starting PostgreSQL $version (cluster main)..." >&2
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
      || tcp_answers 127.0.0.1 5432 || return 1
  fi
  if ! pg_connects "$admin"; then
    [ -n "$ours" ] || return 1
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    $SUDO sed -i -e '1i host all postgres 127.0.0.1/32 trust' \
      -e '1i host all postgres ::1/128 trust' "$hba" || return 1
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload || return 1
    sleep 1 # the server rereads pg_hba.conf after the reload signal, not before it returns
    pg_connects "$admin" || return 1
  fi
  "${UV[@]}" run --frozen python - "$admin" <<'PY' || return 1
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True, connect_timeout=3) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'test'").fetchone():
        conn.execute("CREATE DATABASE test")
PY
  pg_connects "$PG_DEFAULT_URL"
}
