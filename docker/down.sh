#!/usr/bin/env bash
# docker/down.sh - stops and removes the packaged cluster's containers and
# network (docker/compose.yml). Images stay (they are the build cache) and
# so does docker/.env; `docker/down.sh --stop-dockerd` also stops a dockerd
# that docker/dockerd-up.sh started. SW_ENV_FILE as for docker/up.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
env_file=${SW_ENV_FILE:-docker/.env}
if [ ! -f "$env_file" ]; then
    echo "down: no $env_file: no cluster was started from this checkout"
elif docker info >/dev/null 2>&1; then
    docker-compose -f docker/compose.yml --env-file "$env_file" down --remove-orphans --timeout 20
else
    echo "down: dockerd is not running: nothing to remove"
fi
if [ "${1:-}" = --stop-dockerd ]; then
    docker/dockerd-up.sh --stop
fi
