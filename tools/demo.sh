#!/usr/bin/env bash
# tools/demo.sh - a local shardwire demo cluster on loopback, in ./.demo/:
# ZooKeeper holding the shard map (made with `shardctl init`, 1024 vbuckets
# split over the shards), two MariaDB shards (each a lossless semi-sync
# master with a GTID standby, docs/failover.md) and the router on
# 127.0.0.1:6033 watching the map in ZooKeeper and health-checking every
# server.
#
#   tools/demo.sh [start]   install deps, build (build/), start, print how to connect
#   tools/demo.sh stop      stop everything (data in .demo/ is kept)
#   tools/demo.sh status    what runs, on which port
#   tools/demo.sh clean     stop and delete .demo/
#
# Ports (override with the environment): DEMO_ROUTER_PORT=6033,
# DEMO_SHARD_PORTS="3307 3308" (masters), DEMO_STANDBY_PORTS="3317 3318",
# DEMO_ZK_PORT=2182. A port already taken is an error, never silently
# replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=$ROOT/.demo
# The ports of a running demo are remembered so stop/status need no env.
if [ -f "$DEMO/ports.env" ] && [ "${1:-start}" != start ]; then
    # shellcheck source=/dev/null
    . "$DEMO/ports.env"
fi
ROUTER_PORT=${DEMO_ROUTER_PORT:-6033}
read -r -a SHARD_PORTS <<<"${DEMO_SHARD_PORTS:-3307 3308}"
read -r -a STANDBY_PORTS <<<"${DEMO_STANDBY_PORTS:-3317 3318}"
ZK_PORT=${DEMO_ZK_PORT:-2182}
APP_PW=app-pw
BACKEND_PW=shardwire-pw
CONTROL_PW=ctl-pw
REPL_PW=repl-pw
PY=/usr/bin/python3

die() { echo "demo: $*" >&2; exit 1; }
say() { echo "demo: $*"; }

# pid of a component if it is running, else nothing.
pid_of() {
    local f=$DEMO/$1.pid pid
    [ -f "$f" ] || return 1
    pid=$(cat "$f" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_until SECONDS CMD...: polls CMD until it succeeds or the deadline.
wait_until() {
    local secs=$1
    shift
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

zk_ok() {
    [ "$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$ZK_PORT && printf ruok >&3 && cat <&3" 2>/dev/null)" = imok ]
}

# start_server NAME PORT SERVER_ID ROLE: one mariadbd; ROLE master (lossless
# semi-sync master) or standby (GTID replica settings), from docs/failover.md.
start_server() {
    local name=$1 port=$2 id=$3 role=$4 dir=$DEMO/$1 fresh=0 role_args
    if pid_of "$name" >/dev/null; then say "$name already running"; return; fi
    mkdir -p "$dir"
    if [ ! -d "$dir/data/mysql" ]; then
        fresh=1
        rm -rf "$dir/data"
        mariadb-install-db --no-defaults --user=root --datadir="$dir/data" \
            --auth-root-authentication-method=socket --skip-test-db \
            --innodb-log-file-size=16M >"$dir/install.log" 2>&1 \
            || { tail -20 "$dir/install.log"; die "mariadb-install-db failed for $name"; }
    fi
    if [ "$role" = master ]; then
        role_args="--rpl-semi-sync-master-enabled=1 --rpl-semi-sync-master-wait-point=AFTER_SYNC
            --rpl-semi-sync-master-timeout=4294967295 --rpl-semi-sync-slave-enabled=1"
    else
        role_args="--rpl-semi-sync-slave-enabled=1 --relay-log=relay-bin --relay-log-recovery=0
            --sync-relay-log=1 --slave-parallel-threads=4 --read-only=1"
    fi
    # shellcheck disable=SC2086
    setsid mariadbd --no-defaults --user=root --datadir="$dir/data" \
        --socket="$dir/mysqld.sock" --port="$port" --bind-address=127.0.0.1 \
        --pid-file="$DEMO/$name.pid" --log-error="$dir/error.log" \
        --server-id="$id" --log-bin=mysql-bin --binlog-format=ROW --sync-binlog=1 \
        --log-slave-updates=1 --gtid-strict-mode=1 \
        --innodb-flush-log-at-trx-commit=1 --innodb-buffer-pool-size=64M \
        --innodb-log-file-size=16M --skip-name-resolve --max-allowed-packet=256M \
        --character-set-server=utf8mb4 $role_args </dev/null >>"$dir/error.log" 2>&1 &
    wait_until 60 mariadb --no-defaults -uroot -S "$dir/mysqld.sock" -e "SELECT 1" \
        || { tail -20 "$dir/error.log"; die "$name did not start on port $port"; }
    if [ $fresh = 1 ]; then
        # Accounts on every server, kept out of the binlog: each server may
        # become master or standby after a failover.
        mariadb --no-defaults -uroot -S "$dir/mysqld.sock" <<EOF
SET SESSION sql_log_bin = 0;
CREATE USER IF NOT EXISTS 'repl'@'127.0.0.1' IDENTIFIED BY '$REPL_PW';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'shardwire_ctl'@'127.0.0.1' IDENTIFIED BY '$CONTROL_PW';
GRANT REPLICATION SLAVE ADMIN, REPLICA MONITOR, BINLOG ADMIN, BINLOG MONITOR, CONNECTION ADMIN,
  READ_ONLY ADMIN, PROCESS, REPLICATION MASTER ADMIN, RELOAD ON *.* TO 'shardwire_ctl'@'127.0.0.1';
EOF
    fi
    say "$name: mariadbd ($role) on 127.0.0.1:$port (pid $(cat "$DEMO/$name.pid"))"
}

semisync_clients() {
    mariadb --no-defaults -uroot -S "$DEMO/$1/mysqld.sock" -N \
        -e "SHOW STATUS LIKE 'Rpl_semi_sync_master_clients'" | cut -f2
}

has_standby() {
    [ "$(semisync_clients "$1")" -ge 1 ]
}

start_shard() {
    local name=$1 port=$2 sb_port=$3 id=$4
    start_server "$name" "$port" "$id" master
    start_server "$name-sb" "$sb_port" $((id + 100)) standby
    # A standby that never replicated is attached now, before anything is
    # written: a semi-sync master waits for its acknowledgement.
    if [ -z "$(mariadb --no-defaults -uroot -S "$DEMO/$name-sb/mysqld.sock" -N -e \
               "SHOW SLAVE STATUS")" ]; then
        mariadb --no-defaults -uroot -S "$DEMO/$name-sb/mysqld.sock" -e \
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$port, MASTER_USER='repl',
             MASTER_PASSWORD='$REPL_PW', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
             START SLAVE" || die "cannot attach $name-sb to $name"
    fi
    wait_until 30 has_standby "$name" \
        || die "$name-sb did not connect to $name as a semi-sync standby (see .demo/$name-sb/error.log)"
    say "$name-sb replicates from $name (semi-sync)"
    # The app database, its service account and the sample schema, on the
    # master only: the standby gets them by replication. DDL goes to the
    # shards directly, never through the router.
    mariadb --no-defaults -uroot -S "$DEMO/$name/mysqld.sock" <<EOF
CREATE DATABASE IF NOT EXISTS app;
CREATE USER IF NOT EXISTS 'shardwire'@'127.0.0.1' IDENTIFIED BY '$BACKEND_PW';
CREATE USER IF NOT EXISTS 'shardwire'@'localhost' IDENTIFIED BY '$BACKEND_PW';
GRANT ALL ON app.* TO 'shardwire'@'127.0.0.1';
GRANT ALL ON app.* TO 'shardwire'@'localhost';
CREATE TABLE IF NOT EXISTS app.accounts (userid BIGINT NOT NULL, id BIGINT NOT NULL,
  name VARCHAR(100), PRIMARY KEY (userid, id));
EOF
}

start_zk() {
    local dir=$DEMO/zk pid
    if pid_of zk >/dev/null; then say "zookeeper already running"; return; fi
    mkdir -p "$dir/data"
    cat >"$dir/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$dir/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
EOF
    for jar in /usr/share/java/zookeeper.jar /usr/share/java/slf4j-simple.jar; do
        [ -f "$jar" ] || die "missing $jar (run tools/deps.sh)"
    done
    setsid java -Xmx256m -Dzookeeper.admin.enableServer=false \
        -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" \
        </dev/null >>"$dir/zookeeper.log" 2>&1 &
    pid=$!
    echo "$pid" >"$DEMO/zk.pid"
    wait_until 60 zk_ok || { tail -20 "$dir/zookeeper.log"; die "ZooKeeper did not start on port $ZK_PORT"; }
    say "zookeeper on 127.0.0.1:$ZK_PORT (pid $pid)"
}

start_router() {
    local dir=$DEMO/router pid i hash
    if pid_of router >/dev/null; then say "router already running"; return; fi
    mkdir -p "$dir"
    # The map lives in ZooKeeper; create the cluster once, protected by two
    # digest identities (docs/zookeeper.md "Access control"): the admin
    # (shardctl) may change the map, the router may only read it.
    ( umask 077
      [ -f "$DEMO/zk-admin.secret" ] || echo "digest:admin:admin-$RANDOM$RANDOM" >"$DEMO/zk-admin.secret"
      [ -f "$DEMO/zk-router.secret" ] || echo "digest:router:router-$RANDOM$RANDOM" >"$DEMO/zk-router.secret" )
    local ctl=("$ROOT/build/tools/shardctl" --zk "127.0.0.1:$ZK_PORT" --auth-file "$DEMO/zk-admin.secret")
    if ! "${ctl[@]}" status >/dev/null 2>&1; then
        local args=()
        for i in "${!SHARD_PORTS[@]}"; do
            args+=(--shard "s$i=127.0.0.1:${SHARD_PORTS[$i]},standby=127.0.0.1:${STANDBY_PORTS[$i]}")
        done
        "${ctl[@]}" init --router-auth-file "$DEMO/zk-router.secret" "${args[@]}" >/dev/null ||
            die "shardctl init failed"
        say "shard map created in ZooKeeper (shardctl init)"
    fi
    hash=$($PY -c 'import hashlib,sys; print("*" + hashlib.sha1(hashlib.sha1(sys.argv[1].encode()).digest()).hexdigest().upper())' "$APP_PW")
    cat >"$dir/shardwire.conf" <<EOF
# demo config written by tools/demo.sh (see docs/config.md)
listen = 127.0.0.1:$ROUTER_PORT
workers = 2
database = app
shard_key = userid
zookeeper = 127.0.0.1:$ZK_PORT
zookeeper_auth_file = $DEMO/zk-router.secret
map_cache = $dir/map.cache
router_id = demo
backend_user = shardwire
backend_password = $BACKEND_PW
control_user = shardwire_ctl
control_password = $CONTROL_PW
# This router may fail dead masters over (docs/failover.md); changing the
# map needs the admin identity, which the router identity above lacks.
auto_failover = on
failover_zookeeper_auth_file = $DEMO/zk-admin.secret
admin_listen = 127.0.0.1:$((ROUTER_PORT + 1))
user = app $hash                 # password: $APP_PW
max_allowed_packet = 67108864
connect_timeout_ms = 2000
handshake_timeout_ms = 5000
log_level = info
EOF
    setsid "$ROOT/build/router/shardwire" -c "$dir/shardwire.conf" \
        </dev/null >>"$dir/shardwire.log" 2>&1 &
    pid=$!
    echo "$pid" >"$DEMO/router.pid"
    wait_until 30 mariadb --no-defaults -h127.0.0.1 -P"$ROUTER_PORT" -uapp -p"$APP_PW" \
        --connect-timeout=2 app -e "SELECT 1" \
        || { tail -30 "$dir/shardwire.log"; die "router did not accept connections on port $ROUTER_PORT"; }
    say "router on 127.0.0.1:$ROUTER_PORT (pid $pid)"
}

stop_one() {
    local name=$1 pid
    pid=$(pid_of "$name") || { rm -f "$DEMO/$name.pid"; return 0; }
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            say "$name (pid $pid) ignored SIGTERM for 60s; SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        sleep 0.1
    done
    rm -f "$DEMO/$name.pid"
    say "stopped $name"
}

cmd_start() {
    tools/deps.sh
    if [ ! -f build/meson-private/coredata.dat ]; then
        meson setup build >/dev/null || die "meson setup build failed"
    fi
    ninja -C build || die "build failed (ninja -C build)"
    [ -x build/router/shardwire ] || die "build/router/shardwire was not built"
    mkdir -p "$DEMO"
    # Check every port first: fail before starting anything.
    local busy=""
    pid_of router >/dev/null || port_free "$ROUTER_PORT" || busy="$busy router:$ROUTER_PORT"
    pid_of zk >/dev/null || port_free "$ZK_PORT" || busy="$busy zookeeper:$ZK_PORT"
    local i
    [ ${#STANDBY_PORTS[@]} -ge ${#SHARD_PORTS[@]} ] || die "DEMO_STANDBY_PORTS needs one port per shard"
    for i in "${!SHARD_PORTS[@]}"; do
        pid_of "s$i" >/dev/null || port_free "${SHARD_PORTS[$i]}" || busy="$busy s$i:${SHARD_PORTS[$i]}"
        pid_of "s$i-sb" >/dev/null || port_free "${STANDBY_PORTS[$i]}" || busy="$busy s$i-sb:${STANDBY_PORTS[$i]}"
    done
    [ -z "$busy" ] || die "port(s) already in use:$busy (stop what uses them, or set DEMO_ROUTER_PORT / DEMO_SHARD_PORTS / DEMO_ZK_PORT)"
    printf 'DEMO_ROUTER_PORT=%s\nDEMO_SHARD_PORTS="%s"\nDEMO_STANDBY_PORTS="%s"\nDEMO_ZK_PORT=%s\n' \
        "$ROUTER_PORT" "${SHARD_PORTS[*]}" "${STANDBY_PORTS[*]}" "$ZK_PORT" >"$DEMO/ports.env"
    start_zk
    for i in "${!SHARD_PORTS[@]}"; do
        start_shard "s$i" "${SHARD_PORTS[$i]}" "${STANDBY_PORTS[$i]}" $((i + 1))
    done
    start_router
    cat <<EOF

shardwire demo is running (files and logs in $DEMO/).
Connect as an app would:

    mariadb -h127.0.0.1 -P$ROUTER_PORT -uapp -p$APP_PW app

Try:
    INSERT INTO accounts (userid, id, name) VALUES (42, 1, 'alice');
    SELECT * FROM accounts WHERE userid = 42;

See which shard holds user 42, and the cluster:
    build/tools/shardctl --zk 127.0.0.1:$ZK_PORT --auth-file $DEMO/zk-admin.secret explain 'SELECT * FROM accounts WHERE userid = 42'
    build/tools/shardctl --zk 127.0.0.1:$ZK_PORT --auth-file $DEMO/zk-admin.secret status
Look at a shard directly (root over its socket):
    mariadb -uroot -S $DEMO/s0/mysqld.sock app

Console and metrics of the router: http://127.0.0.1:$((ROUTER_PORT + 1))/  (and /metrics)

Fail a master over (each shard has a semi-sync standby; the router replaces a
dead master by itself within about 3 s, auto_failover = on):
    kill -9 \$(cat $DEMO/s0.pid)
    export SHARDWIRE_ZK_AUTH_FILE=$DEMO/zk-admin.secret
    build/tools/shardctl --zk 127.0.0.1:$ZK_PORT status        # s0's master is its old standby
(by hand, with auto_failover off: SHARDWIRE_CONTROL_USER=shardwire_ctl
 SHARDWIRE_CONTROL_PASSWORD=$CONTROL_PW build/tools/shardctl --zk 127.0.0.1:$ZK_PORT failover s0)
(after a failover, start over with: tools/demo.sh clean && tools/demo.sh)

Status: tools/demo.sh status      Stop: tools/demo.sh stop
EOF
}

cmd_stop() {
    [ -d "$DEMO" ] || { say "nothing to stop"; return; }
    stop_one router
    local n
    # Standbys first: a master stopping waits for nothing then.
    for n in $(ls "$DEMO" | sed -n 's/^\(s[0-9]*-sb\)\.pid$/\1/p'); do stop_one "$n"; done
    for n in $(ls "$DEMO" | sed -n 's/^\(s[0-9]*\)\.pid$/\1/p'); do stop_one "$n"; done
    stop_one zk
}

cmd_status() {
    local rc=0 pid
    show() {
        if pid=$(pid_of "$1"); then printf '  %-9s running  pid %-7s %s\n' "$1" "$pid" "$2"
        else printf '  %-9s stopped            %s\n' "$1" "$2"; rc=3; fi
    }
    echo "shardwire demo ($DEMO):"
    show router "127.0.0.1:$ROUTER_PORT  log .demo/router/shardwire.log"
    local i
    for i in "${!SHARD_PORTS[@]}"; do
        show "s$i" "127.0.0.1:${SHARD_PORTS[$i]}  log .demo/s$i/error.log"
        show "s$i-sb" "127.0.0.1:${STANDBY_PORTS[$i]}  log .demo/s$i-sb/error.log"
    done
    show zk "127.0.0.1:$ZK_PORT  log .demo/zk/zookeeper.log"
    return $rc
}

case "${1:-start}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    clean) cmd_stop; rm -rf "$DEMO"; say "removed $DEMO" ;;
    -h|--help|help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$1' (start|stop|status|clean)" ;;
esac
