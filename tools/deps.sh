#!/usr/bin/env bash
# tools/deps.sh - installs every Debian 12 package shardwire needs to build,
# test and run its demo. The package list lives only here.
#   tools/deps.sh          install what is missing (root, apt-get)
#   tools/deps.sh --check  only report: exit 1 and name what is missing
set -euo pipefail

BUILD_PKGS="build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
  libevent-dev libxxhash-dev libpcre2-dev libmariadb-dev libzookeeper-mt-dev
  libssl-dev libjansson-dev"
RUN_PKGS="mariadb-server mariadb-client zookeeper libslf4j-java
  python3 python3-pymysql python3-mysqldb"
# Drivers of the compatibility suite (tests/compat, tests/e2e/test_compat.py),
# and openssl for its test certificate.
# Node's mysql2 comes from the npm registry at test time (into the build dir).
COMPAT_PKGS="php-cli php-mysql libdbd-mariadb-perl default-jdk-headless
  libmariadb-java golang-go golang-github-go-sql-driver-mysql-dev openssl"
# The ORM suite (tests/compat/orm, tests/e2e/test_orm.py); its Node ORMs come
# from the npm registry: `npm ci` into tests/compat/orm/node (package-lock.json).
ORM_PKGS="python3-django python3-sqlalchemy python3-peewee ruby ruby-activerecord ruby-mysql2
  php-doctrine-orm php-doctrine-dbal php-symfony-cache libhibernate3-java
  libhibernate-commons-annotations-java libjavassist-java"
# The web console is checked in a real headless browser (tests/e2e/test_console.py).
BROWSER_PKGS="chromium"
# The packaged cluster (docker/, tests/e2e/test_docker.py): Debian's Docker,
# compose v1 and debootstrap for the local base image.
DOCKER_PKGS="docker.io docker-compose debootstrap"
# A real balancer in front of the router: PROXY protocol v1/v2 and draining
# (tests/e2e/test_proxy_protocol.py).
LB_PKGS="haproxy"

# Network partitions in a namespace of the test's own (tests/e2e/netpart.py).
NET_PKGS="iptables iproute2"

# One dpkg-query for all (one per package took ~10 s on a busy machine).
ALL_PKGS="$BUILD_PKGS $RUN_PKGS $COMPAT_PKGS $ORM_PKGS $BROWSER_PKGS $DOCKER_PKGS $LB_PKGS $NET_PKGS"
# (dpkg-query exits 1 when it knows a package not at all: that is "missing".)
installed=" $({ dpkg-query -W -f='${Package} ${Status}\n' $ALL_PKGS 2>/dev/null || true; } |
    awk '$NF == "installed" && $(NF-1) == "ok" { sub(/:.*/, "", $1); printf "%s ", $1 }')"
missing=""
for p in $ALL_PKGS; do
    case "$installed" in *" $p "*) ;; *) missing="$missing $p" ;; esac
done
# node and npm: any install that provides both commands will do (a nodejs
# that bundles npm conflicts with Debian's separate npm package).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    missing="$missing nodejs npm"
fi
# After npm ci, node_modules/.lock-sha256 holds the lock file's hash: the
# ORM suite's Node packages need (re)installing when it is absent or differs.
ORM_NODE="$(cd "$(dirname "$0")/.." && pwd)/tests/compat/orm/node"
orm_node_lock() { sha256sum <"$ORM_NODE/package-lock.json"; }
orm_node_stale() {
    [ "$(cat "$ORM_NODE/node_modules/.lock-sha256" 2>/dev/null)" != "$(orm_node_lock)" ]
}
if [ "${1:-}" = "--check" ]; then
    status=0
    if [ -n "$missing" ]; then
        echo "deps: missing Debian packages:$missing" >&2
        status=1
    fi
    if orm_node_stale; then
        echo "deps: tests/compat/orm/node needs npm ci" >&2
        status=1
    fi
    exit $status
fi
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "deps: missing Debian packages:$missing (run tools/deps.sh as root)" >&2
        exit 1
    fi
    echo "deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if orm_node_stale; then
    echo "deps: npm ci in tests/compat/orm/node"
    (cd "$ORM_NODE" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || {
        echo "deps: npm ci in $ORM_NODE failed" >&2
        exit 1
    }
    orm_node_lock >"$ORM_NODE/node_modules/.lock-sha256"
fi
# Debian starts packaged servers on install; the demo and tests run their own.
for svc in mariadb zookeeper; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
        systemctl stop "$svc" || true
    fi
done
