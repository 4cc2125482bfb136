#!/bin/sh
# Entry point of the Datarun image. It turns the usual deployment mistakes into
# one clear message at start instead of failed folds later, then runs the
# process given as the command (gunicorn, celery worker, beat or flower; see
# docker-compose.yml).
#
#   DATARUN_MIGRATE_ON_START=1   apply database migrations first (the web service)
#   DATARUN_SANDBOX=docker       for a worker: check the work dir and the Docker daemon
set -eu

fail() {
    echo "datarun: $*" >&2
    exit 1
}

if [ "${DATARUN_MIGRATE_ON_START:-0}" = 1 ]; then
    python /opt/datarun/manage.py migrate --noinput
fi

case " $* " in
*" worker "*)
    if [ "${DATARUN_SANDBOX:-local}" = docker ]; then
        work="${DATARUN_WORK_DIR:-}"
        [ -n "$work" ] || fail "the Docker sandbox needs DATARUN_WORK_DIR, a host directory" \
            "mounted at the same path in this container"
        if [ ! -d "$work" ] || [ ! -w "$work" ]; then
            fail "DATARUN_WORK_DIR=$work is not a directory this worker (uid $(id -u)) can" \
                "write. On the host: sudo install -d -o $(id -u) -g $(id -g) $work"
        fi
        python - <<'PY' || exit 1
import sys

import docker

try:
    docker.from_env(timeout=10).ping()
except Exception as exc:
    sys.exit(f"datarun: cannot reach the Docker daemon ({exc}). Mount /var/run/docker.sock"
             " and give the worker its group: DOCKER_GID=$(stat -c %g /var/run/docker.sock)")
PY
    fi
    ;;
esac

exec "$@"
