#!/usr/bin/env bash
# `make run`: every process of FrontService on this machine, with the embedded MongoDB.
# Ctrl-C stops them all (by the PIDs started here).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${PY:=.venv/bin/python}" "${API_PORT:=8000}" "${MONGO_PORT:=27018}" "${BLOB_PORT:=8101}"
: "${JOB_PORT:=8102}" "${DATA_DIR:=var}"
LOG_DIR="$DATA_DIR/log"
mkdir -p "$LOG_DIR"
# The settings' VAR_DIR is where the run file goes and where `manage.py` reads it.
export FRONTSERVICE_VAR_DIR="$DATA_DIR"
RUN_FILE="$DATA_DIR/run.env"
# The metrics every process here writes and the API's /metrics adds up; empty at each start.
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$DATA_DIR/metrics}"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR" && rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db
pids=()

stop_all() {
  trap - EXIT INT TERM
  echo; echo "stopping..."
  rm -f "$RUN_FILE"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT INT TERM

start() {  # start NAME COMMAND...: in the background, output in $LOG_DIR/NAME.log
  local name=$1; shift
  "$@" >"$LOG_DIR/$name.log" 2>&1 &
  pids+=($!)
  echo "started $name (pid $!, log $LOG_DIR/$name.log)"
}

wait_for_port() {  # wait_for_port NAME PORT
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not start; see $LOG_DIR/$1.log" >&2; tail -20 "$LOG_DIR/$1.log" >&2; exit 1
}

for port in "$MONGO_PORT" "$BLOB_PORT" "$JOB_PORT" "$API_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use (another 'make run'?); set *_PORT to choose others" >&2
    exit 1
  fi
done

# What this run chose, for every `manage.py` command while it runs (the development settings
# read it where the environment says nothing; frontservice/env.py).
cat >"$RUN_FILE" <<ENV
# Written by make run (scripts/run.sh) for manage.py commands; removed when it stops.
MONGODB_URI=mongodb://127.0.0.1:$MONGO_PORT/?directConnection=true
BLOBSERVICE_URL=http://127.0.0.1:$BLOB_PORT
JOBSERVICE_URL=http://127.0.0.1:$JOB_PORT
ENV

start mongo "$PY" -m frontservice.embedded_mongo --port "$MONGO_PORT" \
  --path "$DATA_DIR/mongo/frontservice.sqlite3"
wait_for_port mongo "$MONGO_PORT"
"$PY" manage.py migrate --no-input >"$LOG_DIR/migrate.log"
start blobservice "$PY" -m refservices.blobservice --port "$BLOB_PORT" \
  --data-dir "$DATA_DIR/blobservice"
start jobservice "$PY" -m refservices.jobservice --port "$JOB_PORT" \
  --data-dir "$DATA_DIR/jobservice" --blobservice-url "http://127.0.0.1:$BLOB_PORT"
start worker "$PY" manage.py worker
start api "$PY" -m gunicorn frontservice.wsgi --config gunicorn.conf.py --bind "127.0.0.1:$API_PORT"
for name_port in "blobservice:$BLOB_PORT" "jobservice:$JOB_PORT" "api:$API_PORT"; do
  wait_for_port "${name_port%%:*}" "${name_port##*:}"
done

manage="$PY manage.py"
[[ "$DATA_DIR" == var ]] || manage="FRONTSERVICE_VAR_DIR=$DATA_DIR $manage"
cat <<MSG

FrontService is running on http://127.0.0.1:$API_PORT (Ctrl-C stops everything).

  TOKEN=\$($PY manage.py issue_token --tenant acme --sub alice)
  curl -si -X POST http://127.0.0.1:$API_PORT/api/v1/job -H "Authorization: Bearer \$TOKEN" \\
       -H 'Content-Type: text/plain' --data-binary 'hello world'
  curl -s http://127.0.0.1:$API_PORT/api/v1/job/<id>/status -H "Authorization: Bearer \$TOKEN"
  curl -s http://127.0.0.1:$API_PORT/api/v1/job/<id>/output -H "Authorization: Bearer \$TOKEN"

API docs: http://127.0.0.1:$API_PORT/api/docs/   admin: http://127.0.0.1:$API_PORT/admin/
Operator commands find these processes through $RUN_FILE, with nothing to export:
  make manage ARGS=jobs_summary          (or: $manage jobs_summary)
  make manage ARGS=createsuperuser       then log in to the admin
Logs (one JSON object per line): $LOG_DIR/

MSG
wait -n "${pids[@]}" || true
echo "a process exited; see $LOG_DIR" >&2
