#!/usr/bin/env bash
# docker/dockerd-up.sh - starts the Docker daemon if it is not running and
# waits until `docker info` answers. Machines without systemd (CI
# containers, this project's build hosts) have no service manager to do it:
# dockerd is started in the background with its log in
# $SW_DOCKERD_LOG (default /var/log/dockerd.log).
#
# Exit status: 0 when the daemon answers, 1 (with the reason on stderr)
# when it cannot be started here, e.g. no privileges for namespaces or
# cgroups. `docker/dockerd-up.sh --stop` stops a daemon this script started.
set -uo pipefail
LOG=${SW_DOCKERD_LOG:-/var/log/dockerd.log}
PIDFILE=/run/shardwire-dockerd.pid

die() { echo "dockerd-up: $*" >&2; exit 1; }

if [ "${1:-}" = --stop ]; then
    [ -f "$PIDFILE" ] || { echo "dockerd-up: no dockerd started by this script"; exit 0; }
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && die "dockerd (pid $pid) still running 30 s after SIGTERM"
    fi
    rm -f "$PIDFILE"
    echo "dockerd-up: dockerd stopped"
    exit 0
fi

command -v docker >/dev/null || die "no docker command (install Debian's docker.io: tools/deps.sh)"
if docker info >/dev/null 2>&1; then
    exit 0
fi
command -v dockerd >/dev/null || die "no dockerd (install Debian's docker.io: tools/deps.sh)"
[ "$(id -u)" = 0 ] || die "dockerd is not running and only root can start it"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    : # started by an earlier call, still coming up
else
    echo "dockerd-up: starting dockerd (log $LOG)"
    setsid dockerd </dev/null >>"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
fi
pid=$(cat "$PIDFILE")
deadline=$((SECONDS + ${SW_DOCKERD_WAIT:-60}))
until docker info >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null; then
        rm -f "$PIDFILE"
        die "dockerd exited during start-up; last lines of $LOG:
$(tail -n 15 "$LOG" | sed 's/^/    /')"
    fi
    [ $SECONDS -lt $deadline ] || die "dockerd (pid $pid) did not answer within ${SW_DOCKERD_WAIT:-60} s; see $LOG"
    sleep 0.2
done
echo "dockerd-up: dockerd is running (pid $pid)"
