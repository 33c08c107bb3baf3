# The README's commands. Everything installs itself into .venv on first use.
PYTHON ?= python3.13
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

API_PORT   ?= 8000
MONGO_PORT ?= 27018
BLOB_PORT  ?= 8101
JOB_PORT   ?= 8102
DATA_DIR   ?= var

export BLOBSERVICE_URL ?= http://127.0.0.1:$(BLOB_PORT)
export JOBSERVICE_URL  ?= http://127.0.0.1:$(JOB_PORT)
export MONGODB_URI     ?= mongodb://127.0.0.1:$(MONGO_PORT)/?directConnection=true

.PHONY: install run test test-inprocess test-e2e test-e2e-redis lint lint-imports format \
        coverage migrate mongo blobservice jobservice worker api token manage bench bench-api clean

$(STAMP): requirements/base.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $(STAMP)

install: $(STAMP)

## The whole service on embedded defaults: MongoDB, BlobService, JobService, worker, API.
## Each process in order once the one before is ready, logs in $(DATA_DIR)/log/; Ctrl-C stops all.
run: $(STAMP)
	$(PY) -m launcher --api-port $(API_PORT) --mongo-port $(MONGO_PORT) --blob-port $(BLOB_PORT) \
		--job-port $(JOB_PORT) --data-dir $(DATA_DIR)

## The full suite: the in-process tests (the import layers' contracts among them), then
## tests/e2e (real processes) with the MongoDB broker, and its broker-dependent tests again with
## Redis (the one on 127.0.0.1:6379, or one started for the run if redis-server is installed).
test: $(STAMP)
	@scripts/with_redis.sh --check
	$(MAKE) --no-print-directory test-inprocess test-e2e test-e2e-redis

# Two pytest-xdist workers, each with its own embedded MongoDB, reference services and queue.
test-inprocess: $(STAMP)
	$(PY) -m pytest -n 2

test-e2e: $(STAMP)
	$(PY) -m pytest tests/e2e

# Only the tests whose outcome depends on the broker (marked `brokers`) run a second time.
# Redis: REDIS_URL, a server on 127.0.0.1:6379, or one started for the run (scripts/with_redis.sh).
test-e2e-redis: $(STAMP)
	TEST_BROKER=redis scripts/with_redis.sh $(PY) -m pytest tests/e2e -m brokers

## Line and branch coverage of the whole suite, the processes it starts included (coverage.py).
coverage: $(STAMP)
	rm -f .coverage .coverage.*
	$(PY) -m coverage run -m pytest
	$(PY) -m coverage run -m pytest tests/e2e
	$(PY) -m coverage combine -q
	$(PY) -m coverage report

lint: $(STAMP) lint-imports
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

## The layers' one dependency direction (pyproject.toml [tool.importlinter]).
lint-imports: $(STAMP)
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

## Each process on its own (what `make run` starts), for operators and debugging.
mongo: $(STAMP)
	$(PY) -m frontservice.embedded_mongo --port $(MONGO_PORT) --path $(DATA_DIR)/mongo/frontservice.sqlite3

migrate: $(STAMP)
	$(PY) manage.py migrate --no-input

blobservice: $(STAMP)
	$(PY) -m refservices.blobservice --port $(BLOB_PORT) --data-dir $(DATA_DIR)/blobservice

jobservice: $(STAMP)
	$(PY) -m refservices.jobservice --port $(JOB_PORT) --data-dir $(DATA_DIR)/jobservice \
		--blobservice-url $(BLOBSERVICE_URL)

worker: $(STAMP)
	$(PY) manage.py worker

api: $(STAMP)
	$(PY) -m gunicorn frontservice.wsgi --config gunicorn.conf.py --bind 127.0.0.1:$(API_PORT)

## Any manage.py command on what `make run` started: `make manage ARGS="retry_jobs --dry-run"`.
## The settings read its addresses from $(DATA_DIR)/run.env; the Makefile's own defaults for them
## are dropped here so they do not hide it (a value given in the environment still wins).
MANAGE_UNSET := $(foreach v,MONGODB_URI BLOBSERVICE_URL JOBSERVICE_URL,\
                  $(if $(filter file,$(origin $(v))),-u $(v)))
manage: $(STAMP)
	@env $(MANAGE_UNSET) FRONTSERVICE_VAR_DIR=$(DATA_DIR) $(PY) manage.py $(ARGS)

token: $(STAMP)
	@$(PY) manage.py issue_token --tenant $${TENANT:-acme} --sub $${SUB:-alice}

bench: $(STAMP)
	$(PY) bench/e2e.py

## Requests per second and p50/p99 of the API's hot requests beside their floors (needs wrk).
bench-api: $(STAMP)
	@command -v wrk >/dev/null || { echo "make bench-api needs wrk: apt-get install -y wrk" >&2; exit 2; }
	$(PY) bench/api.py

clean:
	rm -rf $(DATA_DIR)

## Soak: 1,000 jobs through failing downstream services and SIGKILLed workers (bench/README.md).
.PHONY: soak
soak: $(STAMP)
	$(PY) bench/soak.py
