#!/usr/bin/env bash
# `make test-e2e-redis`: run the given command with a Redis server for the Redis broker pass.
# REDIS_URL set, or a server on 127.0.0.1:6379: that one. Otherwise a throwaway redis-server on
# a free port, stopped (by its PID) when the command ends. Without redis-server: one line, exit 1.
# `with_redis.sh --check` only says whether the pass can run, so `make test` fails at once.
set -euo pipefail
port=${REDIS_DEFAULT_PORT:-6379}

if [[ -n "${REDIS_URL:-}" ]]; then
  [[ "${1:-}" == --check ]] && exit 0
  exec "$@"
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  [[ "${1:-}" == --check ]] && exit 0
  export REDIS_URL="redis://127.0.0.1:$port/0"
  exec "$@"
fi
if ! command -v redis-server >/dev/null; then
  echo "The Redis test pass needs Redis: install redis-server (apt-get install redis-server, brew install redis) or run one on 127.0.0.1:$port." >&2
  exit 1
fi
[[ "${1:-}" == --check ]] && exit 0

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --loglevel warning &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
echo "started redis-server on 127.0.0.1:$port (pid $redis_pid) for this run"
export REDIS_URL="redis://127.0.0.1:$port/0"
"$@"
