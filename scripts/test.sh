#!/usr/bin/env bash
# Install everything and run the whole suite: lint, types, then pytest.
# With DATABASE_URL / CELERY_BROKER_URL set (and answering) it runs on PostgreSQL and Redis;
# without them on SQLite and kombu's filesystem broker. Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
bash scripts/test_tools.sh
export VIGIL_ENV=test
export PYTHONUNBUFFERED=1
PY=.venv/bin/python

# Use the configured services only if they answer; say so either way.
"$PY" - <<'PYEOF' > var-test-env.sh
import os, socket, urllib.parse
out = []
def answers(url, default_port):
    u = urllib.parse.urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or default_port), 2):
            return True
    except OSError:
        return False
db = os.environ.get("DATABASE_URL")
if db:
    if answers(db, 5432):
        print(f"echo 'tests: database {urllib.parse.urlparse(db).scheme} at {urllib.parse.urlparse(db).hostname}'")
    else:
        print("echo 'tests: WARNING DATABASE_URL does not answer: falling back to SQLite' >&2")
        print("unset DATABASE_URL")
else:
    print("echo 'tests: database SQLite (DATABASE_URL not set)'")
broker = os.environ.get("CELERY_BROKER_URL")
if broker:
    if answers(broker, 6379 if broker.startswith("redis") else 5672):
        print(f"echo 'tests: broker {urllib.parse.urlparse(broker).scheme}'")
    else:
        print("echo 'tests: WARNING CELERY_BROKER_URL does not answer: falling back to the filesystem broker' >&2")
        print("unset CELERY_BROKER_URL")
else:
    print("echo 'tests: broker filesystem (CELERY_BROKER_URL not set)'")
PYEOF
# shellcheck disable=SC1091
source var-test-env.sh && rm -f var-test-env.sh

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy .
echo "== pytest"
exec .venv/bin/pytest -n "${VIGIL_TEST_WORKERS:-2}" "$@"
