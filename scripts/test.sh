#!/usr/bin/env bash
# Run the test suite (called by `make test`; extra arguments go to pytest).
#
# PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 are used when they answer;
# otherwise the tests fall back to SQLite and the in-process settings with a warning.
# With CI=true, both services are required: a missing one fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${VENV_PYTHON:-.venv/bin/python}"
PG_HOST="${PG_HOST:-127.0.0.1}" PG_PORT="${PG_PORT:-5432}"
REDIS_HOST="${REDIS_HOST:-127.0.0.1}" REDIS_PORT="${REDIS_PORT:-6379}"
TEST_DB="${TEST_DB:-leadcrm}"  # pytest-django creates and drops test_$TEST_DB

reachable() {  # host port
    "$PY" - "$1" "$2" <<'PYEOF'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
except OSError:
    sys.exit(1)
PYEOF
}

missing=()
if reachable "$PG_HOST" "$PG_PORT"; then
    export DATABASE_URL="postgres://postgres@${PG_HOST}:${PG_PORT}/${TEST_DB}"
else
    missing+=("PostgreSQL on ${PG_HOST}:${PG_PORT}|SQLite")
    unset DATABASE_URL
fi
if reachable "$REDIS_HOST" "$REDIS_PORT"; then
    export REDIS_URL="redis://${REDIS_HOST}:${REDIS_PORT}/0"
    export CELERY_BROKER_URL="$REDIS_URL"
else
    missing+=("Redis on ${REDIS_HOST}:${REDIS_PORT}|the filesystem broker and a local-memory cache")
    unset REDIS_URL CELERY_BROKER_URL
fi

if ((${#missing[@]})); then
    for m in "${missing[@]}"; do
        if [[ "${CI:-}" == "true" ]]; then
            echo "ERROR: ${m%%|*} is not reachable; CI requires PostgreSQL and Redis (.ci/run starts them)." >&2
        else
            echo "WARNING: ${m%%|*} is not reachable; testing on ${m#*|} instead (the Celery worker test is skipped)." >&2
        fi
    done
    [[ "${CI:-}" == "true" ]] && exit 1
fi

export SECRET_KEY="${SECRET_KEY:-test-secret}"
export HTTPS=false
export DEBUG=false
export CELERY_TASK_ALWAYS_EAGER=true

echo "make test: database ${DATABASE_URL:-SQLite (in-memory test database)}; broker ${CELERY_BROKER_URL:-filesystem:// (eager tasks)}"

set +e
"$PY" -m pytest "$@"
rc=$?
set -e
if ((rc == 5)); then
    echo "ERROR: pytest collected no tests." >&2
    exit 1
fi
exit "$rc"
