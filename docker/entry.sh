#!/usr/bin/env bash
# sw-entry (docker/entry.sh, installed in the image as /usr/local/bin/sw-entry):
# the entry point of every container of docker/compose.yml. ROLE picks what
# the container runs; settings come from the environment (compose.yml).
#
#   sw-entry zk ID              ZooKeeper ensemble member ID ($SW_ZK_SERVERS)
#   sw-entry mariadb master|standby SERVER_ID
#                               mariadbd, lossless semi-sync master or GTID
#                               standby (docs/failover.md settings)
#   sw-entry router ID          shardwire, once the map exists in ZooKeeper
#   sw-entry haproxy            HAProxy (TCP) in front of $SW_ROUTERS, health
#                               checked on each router's admin /health
#   sw-entry init               one shot: replication, schema, shardctl init
#   sw-entry COMMAND...         anything else runs as is (e.g. bash)
set -euo pipefail

say() { echo "sw-entry[$ROLE]: $*"; }
die() { echo "sw-entry[$ROLE]: $*" >&2; exit 1; }

ROLE=${1:-}
[ -n "$ROLE" ] || { ROLE=?; die "usage: sw-entry zk|mariadb|router|haproxy|init ..."; }
shift

ZK_HOSTS=${SW_ZK_HOSTS:-}
APP_PW=${SW_APP_PASSWORD:-app-pw}
BACKEND_PW=${SW_BACKEND_PASSWORD:-shardwire-pw}
CONTROL_PW=${SW_CONTROL_PASSWORD:-ctl-pw}
REPL_PW=${SW_REPL_PASSWORD:-repl-pw}
DBA_PW=${SW_DBA_PASSWORD:-dba-pw}
ZK_ADMIN=${SW_ZK_ADMIN_AUTH:-digest:admin:admin-pw}
ZK_ROUTER=${SW_ZK_ROUTER_AUTH:-digest:router:router-pw}

# wait_until SECONDS WHAT CMD...: polls CMD until it succeeds or dies.
wait_until() {
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "gave up after ${secs}s waiting for $what"
        sleep 0.5
    done
}

# A ZooKeeper credential in a private file (shardctl --auth-file, and the
# router's own key).
auth_file() {
    local f=$1 text=$2
    (umask 077; printf '%s\n' "$text" >"$f")
}

# ---- ZooKeeper
run_zk() {
    local id=${1:?zk ID} dir=/var/lib/sw-zookeeper entry
    mkdir -p "$dir"
    echo "$id" >"$dir/myid"
    cat >/etc/sw-zoo.cfg <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$dir
clientPort=2181
quorumListenOnAllIPs=true
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr
CFG
    # SW_ZK_SERVERS: "1=IP 2=IP 3=IP"
    for entry in ${SW_ZK_SERVERS:?}; do
        echo "server.${entry%%=*}=${entry#*=}:2888:3888" >>/etc/sw-zoo.cfg
    done
    say "ZooKeeper server $id"
    exec java -Xmx${SW_ZK_HEAP:-128m} -Dzookeeper.admin.enableServer=false \
        -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
        org.apache.zookeeper.server.quorum.QuorumPeerMain /etc/sw-zoo.cfg
}

# ---- MariaDB
run_mariadb() {
    local role=${1:?master|standby} id=${2:?server id} data=/var/lib/sw-mysql role_args
    case $role in
        # tests/e2e/cluster.py MARIADB_SEMISYNC_MASTER_ARGS / MARIADB_STANDBY_ARGS
        master) role_args=(--rpl-semi-sync-master-enabled=1
                           --rpl-semi-sync-master-wait-point=AFTER_SYNC
                           --rpl-semi-sync-master-timeout=4294967295
                           --rpl-semi-sync-slave-enabled=1) ;;
        standby) role_args=(--rpl-semi-sync-slave-enabled=1 --relay-log=relay-bin
                            --relay-log-recovery=0 --sync-relay-log=1
                            --slave-parallel-threads=4 --slave-net-timeout=10 --read-only=1) ;;
        *) die "mariadb role '$role' is not master or standby" ;;
    esac
    if [ ! -d "$data/mysql" ]; then
        mkdir -p "$data"
        mariadb-install-db --no-defaults --user=root --datadir="$data" \
            --auth-root-authentication-method=socket --skip-test-db \
            --innodb-log-file-size=16M >/tmp/install.log 2>&1 \
            || { cat /tmp/install.log; die "mariadb-install-db failed"; }
        # Accounts on every server, outside any binlog (bootstrap mode has
        # none): each server may be master or standby after a failover.
        # FLUSH PRIVILEGES loads the grant tables bootstrap mode skips.
        # sw_dba is what the init job uses over the network.
        mariadbd --no-defaults --user=root --datadir="$data" --bootstrap \
            --innodb-log-file-size=16M >/tmp/bootstrap.log 2>&1 <<SQL || { cat /tmp/bootstrap.log; die "account setup failed"; }
FLUSH PRIVILEGES;
CREATE USER 'repl'@'%' IDENTIFIED BY '$REPL_PW';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
CREATE USER 'shardwire_ctl'@'%' IDENTIFIED BY '$CONTROL_PW';
GRANT REPLICATION SLAVE ADMIN, REPLICA MONITOR, BINLOG ADMIN, BINLOG MONITOR, CONNECTION ADMIN,
  READ_ONLY ADMIN, PROCESS, REPLICATION MASTER ADMIN, RELOAD ON *.* TO 'shardwire_ctl'@'%';
CREATE USER 'sw_dba'@'%' IDENTIFIED BY '$DBA_PW';
GRANT ALL ON *.* TO 'sw_dba'@'%' WITH GRANT OPTION;
SQL
    fi
    say "mariadbd $role, server id $id"
    exec mariadbd --no-defaults --user=root --datadir="$data" --bind-address=0.0.0.0 --port=3306 \
        --socket=/run/mysqld.sock --server-id="$id" --log-bin=mysql-bin --binlog-format=ROW \
        --sync-binlog=1 --log-slave-updates=1 --gtid-strict-mode=1 \
        --innodb-flush-log-at-trx-commit=1 --innodb-buffer-pool-size=64M \
        --innodb-log-file-size=16M --skip-name-resolve --max-allowed-packet=256M \
        --character-set-server=utf8mb4 "${role_args[@]}"
}

# mysql_native_password hash of $1 (*HEX(SHA1(SHA1(pw)))) with coreutils only.
native_hash() {
    local h1
    h1=$(printf '%s' "$1" | sha1sum | cut -c1-40)
    # shellcheck disable=SC2059
    printf "$(printf '%s' "$h1" | sed 's/../\\x&/g')" | sha1sum | cut -c1-40 |
        tr a-f A-F | sed 's/^/*/'
}

map_exists() {
    shardctl --zk "$ZK_HOSTS" --auth-file /etc/shardwire/zk-router.secret status
}

# ---- router
run_router() {
    local id=${1:?router ID}
    mkdir -p /etc/shardwire /var/lib/shardwire
    auth_file /etc/shardwire/zk-router.secret "$ZK_ROUTER"
    (umask 077; cat >/etc/shardwire/shardwire.conf <<CFG
# written by sw-entry from docker/compose.yml (see docs/config.md)
listen = 0.0.0.0:6033
admin_listen = 0.0.0.0:8080
workers = ${SW_ROUTER_WORKERS:-2}
database = app
shard_key = userid
zookeeper = $ZK_HOSTS
zookeeper_auth_file = /etc/shardwire/zk-router.secret
map_cache = /var/lib/shardwire/map.cache
router_id = $id
backend_user = shardwire
backend_password = $BACKEND_PW
control_user = shardwire_ctl
control_password = $CONTROL_PW
user = app $(native_hash "$APP_PW")
max_allowed_packet = 67108864
connect_timeout_ms = 2000
handshake_timeout_ms = 5000
log_level = info
# HAProxy sends each client's address first (docs/operations.md), and a
# stopping router answers /health 503 for longer than HAProxy needs to
# notice (inter 1s, fall 2) before it closes.
proxy_protocol_networks = ${SW_BALANCER:?}
drain_delay_ms = 3000
CFG
)
    # The init job creates the map; until then there is nothing to route.
    say "waiting for the shard map in ZooKeeper ($ZK_HOSTS)"
    wait_until "${SW_WAIT:-300}" "the shard map (the init job runs shardctl init)" map_exists
    say "shardwire $id"
    exec shardwire -c /etc/shardwire/shardwire.conf
}

# ---- HAProxy
run_haproxy() {
    local r n=0
    cat >/etc/sw-haproxy.cfg <<CFG
global
    maxconn 4096

defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout check 2s

# Apps connect here; a router is taken out when its admin /health is not
# 200 (no fresh map, draining) or it does not answer.
frontend mysql
    bind :6033
    default_backend routers

backend routers
    balance leastconn
    option httpchk GET /health
    http-check expect status 200
    default-server check port 8080 inter 1s fall 2 rise 2 on-marked-down shutdown-sessions
CFG
    for r in ${SW_ROUTERS:?}; do   # "NAME=IP ..."
        n=$((n + 1))
        echo "    server ${r%%=*} ${r#*=}:6033 send-proxy-v2" >>/etc/sw-haproxy.cfg
    done
    cat >>/etc/sw-haproxy.cfg <<CFG

listen stats
    mode http
    bind :8404
    stats enable
    stats uri /
    stats refresh 2s
CFG
    haproxy -c -q -f /etc/sw-haproxy.cfg || die "bad haproxy config"
    say "haproxy in front of $n routers"
    exec haproxy -W -db -f /etc/sw-haproxy.cfg
}

# ---- init job
sql() {   # sql HOST SQL...
    local host=$1
    shift
    mariadb --no-defaults -h"$host" -usw_dba -p"$DBA_PW" --connect-timeout=3 -N -e "$*"
}

zk_serving() {   # a member that is leader or follower: the ensemble has quorum
    [ "$(printf srvr | nc -w 3 "$1" 2181 | sed -n 's/^Mode: //p')" != "" ]
}

run_init() {
    local shard master standby args=() zk
    # SW_SHARDS: "s0=MASTER_IP/STANDBY_IP s1=..."
    for zk in ${ZK_HOSTS//,/ }; do
        wait_until "${SW_WAIT:-300}" "ZooKeeper $zk" zk_serving "${zk%:*}"
    done
    say "ZooKeeper ensemble serving"
    for shard in ${SW_SHARDS:?}; do
        master=${shard#*=}; standby=${master#*/}; master=${master%/*}; shard=${shard%%=*}
        wait_until "${SW_WAIT:-300}" "$shard master $master" sql "$master" "SELECT 1"
        wait_until "${SW_WAIT:-300}" "$shard standby $standby" sql "$standby" "SELECT 1"
        # A standby that never replicated is attached before anything is
        # written: a semi-sync master waits for its acknowledgement.
        if [ -z "$(sql "$standby" "SHOW SLAVE STATUS")" ]; then
            sql "$standby" "CHANGE MASTER TO MASTER_HOST='$master', MASTER_PORT=3306,
                MASTER_USER='repl', MASTER_PASSWORD='$REPL_PW', MASTER_USE_GTID=slave_pos,
                MASTER_CONNECT_RETRY=1; START SLAVE" || die "cannot attach $standby to $master"
        fi
        wait_until 60 "$standby to connect to $master as a semi-sync standby" \
            test_semisync "$master"
        say "$shard: $standby replicates from $master (semi-sync)"
        # App database, the router's backend account and the demo schema on
        # the master; the standby gets them by replication.
        sql "$master" "CREATE DATABASE IF NOT EXISTS app;
            CREATE USER IF NOT EXISTS 'shardwire'@'%' IDENTIFIED BY '$BACKEND_PW';
            GRANT ALL ON app.* TO 'shardwire'@'%';
            CREATE TABLE IF NOT EXISTS app.accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL,
              name VARCHAR(100), PRIMARY KEY (userid, id))" || die "schema on $shard failed"
        args+=(--shard "$shard=$master:3306,standby=$standby:3306")
    done
    auth_file /tmp/zk-admin.secret "$ZK_ADMIN"
    auth_file /tmp/zk-router.secret "$ZK_ROUTER"
    local ctl=(shardctl --zk "$ZK_HOSTS" --auth-file /tmp/zk-admin.secret) rc=0
    "${ctl[@]}" init --router-auth-file /tmp/zk-router.secret "${args[@]}" || rc=$?
    case $rc in
        0) say "shard map created (shardctl init)" ;;
        6) say "shard map exists already" ;;
        *) die "shardctl init failed (exit $rc)" ;;
    esac
    "${ctl[@]}" status
}

test_semisync() {
    [ "$(sql "$1" "SHOW STATUS LIKE 'Rpl_semi_sync_master_clients'" | cut -f2)" -ge 1 ]
}

case $ROLE in
    zk) run_zk "$@" ;;
    mariadb) run_mariadb "$@" ;;
    router) run_router "$@" ;;
    haproxy) run_haproxy "$@" ;;
    init) run_init "$@" ;;
    *) exec "$ROLE" "$@" ;;
esac
