#!/usr/bin/env bash
# docker/up.sh - one command for the packaged cluster (docker/compose.yml):
# starts dockerd if needed, makes the local Debian 12 base image
# (docker/mkbase.sh), builds the shardwire image from this checkout, brings
# the cluster up, waits until a statement works through HAProxy and prints
# how to connect. Running it again keeps the running cluster (and rebuilds
# and replaces what changed). docker/down.sh stops and removes it.
#
# Environment (defaults in brackets; saved in docker/.env on first use):
#   SW_PORT [6033]          HAProxy's app port on the host
#   SW_BIND [127.0.0.1]     host address the app port is published on
#   SW_NET [172.30.77]      the cluster's /24 subnet (fixed IPs: the map holds IPs)
#   SW_ROUTER1_ADMIN_PORT [8081], SW_ROUTER2_ADMIN_PORT [8082]   consoles
#   SW_HAPROXY_STATS_PORT [8404]
#   COMPOSE_PROJECT_NAME [shardwire]
#   SW_ENV_FILE [docker/.env]   where the settings and passwords are kept
#   SW_WAIT [300]           seconds to wait for the cluster
set -euo pipefail
cd "$(dirname "$0")/.."
D=docker
say() { echo "up: $*"; }
die() { echo "up: $*" >&2; exit 1; }

command -v docker-compose >/dev/null || die "no docker-compose (install Debian's docker-compose: tools/deps.sh)"
$D/dockerd-up.sh || die "no container runtime: dockerd cannot run here"
$D/mkbase.sh

# Secrets are made once per checkout and kept in docker/.env (mode 600,
# not in git); variables already in the environment win.
ENV_FILE=${SW_ENV_FILE:-$D/.env}
if [ ! -f "$ENV_FILE" ]; then
    rnd() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }
    (umask 077; cat >"$ENV_FILE" <<ENV
# written by docker/up.sh; read by docker-compose (docker/compose.yml)
COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-shardwire}
SW_ZK_ADMIN_AUTH=digest:admin:$(rnd)
SW_ZK_ROUTER_AUTH=digest:router:$(rnd)
SW_DBA_PASSWORD=$(rnd)
SW_BACKEND_PASSWORD=$(rnd)
SW_CONTROL_PASSWORD=$(rnd)
SW_REPL_PASSWORD=$(rnd)
ENV
)
    say "wrote $ENV_FILE (passwords for this cluster)"
fi

say "building image shardwire:local (docker/Dockerfile)"
t0=$SECONDS
# The build stage is tagged too (shardwire:build), so that its package layer
# stays cached when the leftovers of earlier builds are pruned below.
for target in "--target build -t shardwire:build" "-t shardwire:local"; do
    # shellcheck disable=SC2086
    docker build -q --force-rm -f $D/Dockerfile $target . >/dev/null ||
        die "image build failed (run: docker build -f docker/Dockerfile .)"
done
say "image built in $((SECONDS - t0))s"
# Images a rebuild left untagged (ours only, by label) are garbage.
docker image prune -f --filter label=org.shardwire.image >/dev/null || true

compose() { docker-compose -f $D/compose.yml --env-file "$ENV_FILE" "$@"; }
compose up -d --remove-orphans

# The init job sets up replication, the schema and the map; it must
# succeed. Any other container that stops meanwhile is a failure too.
project=${COMPOSE_PROJECT_NAME:-$(sed -n 's/^COMPOSE_PROJECT_NAME=//p' "$ENV_FILE")}
project=${project:-docker}
deadline=$((SECONDS + ${SW_WAIT:-300}))
while :; do
    exited=$(docker ps -a --filter "label=com.docker.compose.project=$project" --filter status=exited \
             --format '{{.Label "com.docker.compose.service"}} {{.Status}}')
    init_state=$(printf '%s\n' "$exited" | sed -n 's/^init //p')
    others=$(printf '%s\n' "$exited" | grep -v '^init ' | grep . || true)
    if [ -n "$others" ]; then
        for svc in $(printf '%s\n' "$others" | cut -d' ' -f1) init; do
            compose logs --no-color --tail=20 "$svc" >&2
        done
        die "container(s) stopped during start-up: $(echo $others)"
    fi
    case $init_state in
        "Exited (0)"*) break ;;
        Exited*) compose logs --no-color --tail=30 init >&2; die "init failed: $init_state" ;;
    esac
    [ $SECONDS -lt $deadline ] || { compose logs --no-color --tail=30 init >&2; die "init did not finish in ${SW_WAIT:-300}s"; }
    sleep 1
done
say "cluster initialised"

# shellcheck source=/dev/null
set -a; . "$ENV_FILE"; set +a
port=${SW_PORT:-6033}
app_pw=${SW_APP_PASSWORD:-app-pw}
deadline=$((SECONDS + ${SW_WAIT:-300}))
until compose exec -T haproxy mariadb --no-defaults -h127.0.0.1 -P6033 -uapp -p"$app_pw" \
        --connect-timeout=3 app -e "SELECT 1" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { compose ps; die "no statement works through HAProxy after ${SW_WAIT:-300}s"; }
    sleep 1
done
# Every router in service: HAProxy's health checks (each router's /health)
# see them all UP.
routers_up() {
    compose exec -T haproxy bash -c 'exec 3<>/dev/tcp/127.0.0.1/8404 &&
        printf "GET /;csv HTTP/1.0\r\n\r\n" >&3 && cat <&3' |
        awk -F, '$1 == "routers" && $2 ~ /^router/ { n++; if ($18 != "UP") bad++ }
                 END { exit !(n > 0 && bad == 0) }'
}
until routers_up; do
    [ $SECONDS -lt $deadline ] || { compose ps; die "not every router is UP in HAProxy after ${SW_WAIT:-300}s"; }
    sleep 1
done
cat <<MSG

shardwire cluster is up (docker-compose project ${COMPOSE_PROJECT_NAME:-shardwire}):
Connect through HAProxy as an app would:

    mariadb -h${SW_BIND:-127.0.0.1} -P$port -uapp -p$app_pw app

Try:
    INSERT INTO accounts (userid, id, name) VALUES (42, 1, 'alice');
    SELECT * FROM accounts WHERE userid = 42;

Web consoles: http://127.0.0.1:${SW_ROUTER1_ADMIN_PORT:-8081}/ and http://127.0.0.1:${SW_ROUTER2_ADMIN_PORT:-8082}/
HAProxy stats: http://127.0.0.1:${SW_HAPROXY_STATS_PORT:-8404}/
Cluster status:
    docker-compose -f docker/compose.yml exec router1 \\
        sh -c 'shardctl --zk \$SW_ZK_HOSTS --auth-file /etc/shardwire/zk-router.secret status'
Kill a router (HAProxy moves new clients to the other):
    docker-compose -f docker/compose.yml kill router1
Stop and remove everything: docker/down.sh
MSG
