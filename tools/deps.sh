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
# The web console is checked in a real headless browser (tests/e2e/test_console.py).
BROWSER_PKGS="chromium"
# The packaged cluster (docker/, tests/e2e/test_docker.py): Debian's Docker,
# compose v1 and debootstrap for the local base image.
DOCKER_PKGS="docker.io docker-compose debootstrap"
# A real balancer in front of the router: PROXY protocol v1/v2 and draining
# (tests/e2e/test_proxy_protocol.py).
LB_PKGS="haproxy"

missing=""
for p in $BUILD_PKGS $RUN_PKGS $COMPAT_PKGS $BROWSER_PKGS $DOCKER_PKGS $LB_PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# node and npm: any install that provides both commands will do (a nodejs
# that bundles npm conflicts with Debian's separate npm package).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    missing="$missing nodejs npm"
fi
if [ "${1:-}" = "--check" ]; then
    [ -z "$missing" ] && exit 0
    echo "deps: missing Debian packages:$missing" >&2
    exit 1
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
# Debian starts packaged servers on install; the demo and tests run their own.
for svc in mariadb zookeeper; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
        systemctl stop "$svc" || true
    fi
done
