#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) are up and usable by the
# test suite, and that Prometheus and promtool are installed. Already running: does nothing. Installed but stopped: starts them. Not
# installed, running as root on Debian: installs them, allows local trust access for the
# `postgres` user over 127.0.0.1, and starts them. Idempotent; says what it did.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_HOST=127.0.0.1
REDIS_PORT=${SEAWALL_REDIS_PORT:-6379}

say() { echo "services: $*"; }
die() { echo "services: error: $*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for_port() {
    local host=$1 port=$2 name=$3
    for _ in $(seq 1 60); do
        port_open "$host" "$port" && return 0
        sleep 0.5
    done
    die "$name did not start listening on $host:$port within 30 s"
}

apt_updated=0
apt_install() {
    [ "$(id -u)" -eq 0 ] || die "$* not installed and not running as root: install it, or start the server yourself"
    command -v apt-get >/dev/null || die "$* not installed and apt-get is not available: install it yourself"
    if [ "$apt_updated" -eq 0 ]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    say "installing $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_usable() {
    command -v psql >/dev/null || return 1
    psql "host=$PG_HOST port=$PG_PORT user=postgres dbname=postgres connect_timeout=5" -qAtc 'select 1' >/dev/null 2>&1
}

ensure_postgres() {
    if port_open "$PG_HOST" "$PG_PORT"; then
        if ! command -v psql >/dev/null; then
            apt_install postgresql-client
        fi
        pg_usable || die "PostgreSQL answers on $PG_HOST:$PG_PORT but user postgres cannot connect without a password; allow trust (or set DATABASE_URL and PGPASSWORD)"
        say "PostgreSQL already running on $PG_HOST:$PG_PORT"
        return
    fi
    if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
        apt_install postgresql postgresql-client
    fi
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    [ -n "$version" ] || die "no PostgreSQL cluster under /etc/postgresql"
    local hba=/etc/postgresql/$version/main/pg_hba.conf
    if ! grep -Eq '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
        say "allowing trust access from 127.0.0.1 in $hba"
        sed -i '1i host all all 127.0.0.1/32 trust\nlocal all all trust' "$hba"
    fi
    say "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
    wait_for_port "$PG_HOST" "$PG_PORT" PostgreSQL
    pg_usable || die "PostgreSQL started but user postgres cannot connect from $PG_HOST"
    say "PostgreSQL running on $PG_HOST:$PG_PORT"
}

ensure_redis() {
    if port_open "$REDIS_HOST" "$REDIS_PORT"; then
        say "Redis already running on $REDIS_HOST:$REDIS_PORT"
        return
    fi
    if ! command -v redis-server >/dev/null; then
        apt_install redis-server
    fi
    say "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    local dir=/var/lib/redis log=/var/log/redis/seawall.log
    [ -w "$dir" ] || dir=$(mktemp -d)
    [ -w "$(dirname "$log")" ] || log="$dir/redis.log"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
        --save "" --appendonly no --dir "$dir" --logfile "$log"
    wait_for_port "$REDIS_HOST" "$REDIS_PORT" Redis
    say "Redis running on $REDIS_HOST:$REDIS_PORT"
}

# Prometheus and promtool: the alert rules' unit tests, the metrics check, and the end-to-end
# alert test (examples/reference-service/tests/prometheus.rs) run them. Nothing is started here: the
# test runs its own Prometheus on a free loopback port.
ensure_prometheus() {
    if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
        say "Prometheus $(prometheus --version 2>&1 | head -n1 | awk '{print $3}') installed"
        return
    fi
    apt_install prometheus
    command -v promtool >/dev/null || die "the prometheus package installed no promtool"
    say "Prometheus installed"
}

ensure_postgres
ensure_redis
ensure_prometheus
