#!/usr/bin/env bash
# Install everything and start the whole service on the embedded default profile:
# SQLite, kombu's filesystem broker, three Celery workers (queues default and media; the gpu
# queue, which gathers text-scoring jobs into batches; and the alerts queue: escalation and
# notifications), the beat scheduler and the web server on
# 127.0.0.1:${VIGIL_PORT:-8000}. Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
export VIGIL_ENV="${VIGIL_ENV:-local}"
export PYTHONUNBUFFERED=1
PORT="${VIGIL_PORT:-8000}"
BASE="http://127.0.0.1:${PORT}"
PY=.venv/bin/python
LOGS=var/log
mkdir -p "$LOGS"

$PY manage.py bootstrap_local
$PY manage.py migrate --noinput -v0
$PY manage.py collectstatic --noinput -v0
$PY manage.py seed_demo -v0

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping Vigil..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped."
}
trap stop INT TERM EXIT

.venv/bin/celery -A config worker -Q default,media --concurrency 2 --loglevel INFO \
  --hostname "vigil-local@%h" >"$LOGS/worker.log" 2>&1 &
pids+=($!)
# Escalation, notifications and the help-requests sweep on their own worker (config/celery.py):
# a long video or an hour-long sweep never delays them.
.venv/bin/celery -A config worker -Q alerts --concurrency 1 --loglevel INFO \
  --hostname "vigil-alerts@%h" >"$LOGS/worker-alerts.log" 2>&1 &
pids+=($!)
# The gpu queue's worker holds a whole batch of unacknowledged jobs (docs/batching.md): its
# prefetch window must be at least the batch size, while the media worker keeps 1.
GPU_BATCH="${VIGIL_GPU_BATCH_SIZE:-32}"
.venv/bin/celery -A config worker -Q gpu --concurrency 1 --prefetch-multiplier "$GPU_BATCH" \
  --loglevel INFO --hostname "vigil-gpu@%h" >"$LOGS/worker-gpu.log" 2>&1 &
pids+=($!)
.venv/bin/celery -A config beat --loglevel INFO \
  --schedule var/celerybeat-schedule >"$LOGS/beat.log" 2>&1 &
pids+=($!)
.venv/bin/gunicorn config.wsgi:application --bind "127.0.0.1:${PORT}" --workers 2 \
  --timeout 120 --access-logfile "$LOGS/web-access.log" --error-logfile "$LOGS/web.log" &
pids+=($!)

for _ in $(seq 1 60); do
  if curl -fsS "$BASE/healthz" >/dev/null 2>&1; then break; fi
  sleep 0.5
done
$PY manage.py seed_demo -v0 --no-seed --summary "$BASE"
echo "Logs: $LOGS/web.log, $LOGS/worker.log, $LOGS/worker-gpu.log, $LOGS/worker-alerts.log, $LOGS/beat.log"

# Stop everything if any one of them exits.
wait -n "${pids[@]}"
echo "a Vigil process exited; see $LOGS/" >&2
exit 1
