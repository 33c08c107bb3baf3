"""FrontService settings: every value comes from the environment (see .env.example).

Defaults run the whole service on this machine with the embedded MongoDB (``make run``);
production sets MONGODB_URI, the downstream URLs, the JWT key and audience.
"""

import ipaddress
import json
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from frontservice.env import (
    env_bool,
    env_float,
    env_int,
    env_is_set,
    env_list,
    env_rate,
    env_str,
    read_run_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("FRONTSERVICE_VAR_DIR", str(BASE_DIR / "var")))

# `production` makes the settings fail closed: the block at the end of this file refuses to load
# them without real secrets, a JWT key and audience, and explicit hosts.
FRONTSERVICE_ENV = env_str("FRONTSERVICE_ENV", "development")
if FRONTSERVICE_ENV not in ("development", "production"):
    raise ImproperlyConfigured(
        f"FRONTSERVICE_ENV={FRONTSERVICE_ENV!r} must be 'development' or 'production'."
    )
PRODUCTION = FRONTSERVICE_ENV == "production"
# `make run` writes the addresses it chose here (launcher/__main__.py) and removes it when it
# stops; in development the settings take them where the environment says nothing, so a
# `manage.py` command finds what `make run` started. Production never reads it.
RUN_FILE = VAR_DIR / "run.env"
if not PRODUCTION:
    read_run_file(RUN_FILE)

DEBUG = env_bool("DJANGO_DEBUG", False)
# Every development default of a secret starts with "dev-only-"; production refuses such values.
DEVELOPMENT_VALUE_PREFIX = "dev-only-"
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "dev-only-insecure-secret-key-change-me")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")

INSTALLED_APPS = [
    "frontservice.apps.MongoAdminConfig",
    "frontservice.apps.MongoAuthConfig",
    "frontservice.apps.MongoContentTypesConfig",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's and Redoc's assets as static files, so /api/docs/ needs no CDN.
    "drf_spectacular_sidecar",
    "frontservice.apps.MongoDjangoQConfig",
    "frontservice.apps.MongoAxesConfig",
    "jobs",
    "orchestration",
    "webhooks",
]

# The contrib apps and django_q ship migrations with AutoField; these are regenerated with
# ObjectIdAutoField (``manage.py makemigrations admin auth contenttypes django_q``).
MIGRATION_MODULES = {
    "admin": "frontservice.mongo_migrations.admin",
    "auth": "frontservice.mongo_migrations.auth",
    "contenttypes": "frontservice.mongo_migrations.contenttypes",
    "django_q": "frontservice.mongo_migrations.django_q",
    "axes": "frontservice.mongo_migrations.axes",
}

MIDDLEWARE = [
    # First: the request id and the access line cover every answer, also those of the
    # middleware below (static files, a refused Host); then the request metrics.
    "frontservice.request_log.RequestLogMiddleware",
    "frontservice.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (the API docs' assets, the admin's) from gunicorn itself, with DEBUG off.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Sessions, the user and messages for the admin's pages, skipped on the JSON API's paths,
    # which use none of them (frontservice/browser_middleware.py).
    "frontservice.browser_middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "frontservice.browser_middleware.AuthenticationMiddleware",
    "frontservice.browser_middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it answers a locked-out admin login (AXES_LOCKOUT_CALLABLE).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "frontservice.urls"
WSGI_APPLICATION = "frontservice.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- MongoDB -------------------------------------------------------------------------------
# The default points at the embedded mongoeco wire server that `make run` starts
# (frontservice/embedded_mongo.py); production sets MONGODB_URI to a replica set.
MONGODB_URI = env_str("MONGODB_URI", "mongodb://127.0.0.1:27018/?directConnection=true")
MONGODB_NAME = env_str("MONGODB_NAME", "frontservice")
DATABASES = {
    "default": {
        "ENGINE": "django_mongodb_backend",
        "HOST": MONGODB_URI,
        "NAME": MONGODB_NAME,
        "OPTIONS": {
            # Fail fast when the database is down instead of hanging a request for 30 s.
            "serverSelectionTimeoutMS": env_int("MONGODB_SERVER_SELECTION_TIMEOUT_MS", 5000),
            "connectTimeoutMS": env_int("MONGODB_CONNECT_TIMEOUT_MS", 5000),
        },
        "TEST": {"NAME": env_str("MONGODB_TEST_NAME", f"test_{MONGODB_NAME}")},
    }
}
DEFAULT_AUTO_FIELD = "django_mongodb_backend.fields.ObjectIdAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- Admin logins (django-axes) ----------------------------------------------------------------
# Failed logins are counted per user name and per client address, each on its own: past
# ADMIN_LOGIN_FAILURE_LIMIT failures either one is refused (429) for ADMIN_LOGIN_COOLOFF_MINUTES,
# even with the right password. The counts live in MongoDB, shared by every API process.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_float("ADMIN_LOGIN_COOLOFF_MINUTES", 15.0, minimum=0.1) / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "frontservice.admin_login.locked_out"
AXES_CLIENT_IP_CALLABLE = "frontservice.admin_login.client_address"
# Proxies in front of the API that append the client's address to X-Forwarded-For (1 behind
# deploy/nginx.conf); 0: the address is the connection's own (REMOTE_ADDR).
ADMIN_LOGIN_PROXY_COUNT = env_int("ADMIN_LOGIN_PROXY_COUNT", 0, minimum=0)
# Not every access is written to the database, only the failures (and the lockouts).
AXES_DISABLE_ACCESS_LOG = True
# No banner on every start: commands whose first line of stderr is their message keep it.
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
# The admin's times to the second (frontservice/formats/en/formats.py).
FORMAT_MODULE_PATH = ["frontservice.formats"]
STATIC_URL = "static/"
# WhiteNoise serves the apps' static files from where they are installed (found through the
# staticfiles finders once, at startup), so nothing is collected: no `collectstatic` step in
# `make run`, the tests or the image, and no STATIC_ROOT to keep in sync with the code.
WHITENOISE_USE_FINDERS = True

# --- API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["jobs.api.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's negotiation, answered at once for the Accept headers nearly every client sends.
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "jobs.api.negotiation.JSONFirstNegotiation",
    # Only the upload view parses bodies, and it streams them itself.
    "DEFAULT_PARSER_CLASSES": [],
    "EXCEPTION_HANDLER": "jobs.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
# Django's own CSRF refusal (the admin's forms; the API views are exempt) as a problem document.
CSRF_FAILURE_VIEW = "jobs.api.errors.csrf_failure"

# --- OpenAPI schema (drf-spectacular) ------------------------------------------------------
# Served at /api/schema/ with the docs at /api/docs/ (frontservice/urls.py), both without a
# token: they describe the API and hold no data. The descriptions live in jobs/api/schema.py.
SPECTACULAR_SETTINGS = {
    "TITLE": "FrontService API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Request and response components apart, so a file field is a binary upload.
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"JobStatus": "jobs.states.Status"},
    # Swagger UI and Redoc from drf-spectacular-sidecar's static files, not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "jobs.api.schema.describe_errors",
    ],
}

# --- Identity (verified JWT) ---------------------------------------------------------------
JWT_ALGORITHM = env_str("JWT_ALGORITHM", "HS256")
JWT_SIGNING_KEY = env_str("JWT_SIGNING_KEY", "dev-only-jwt-signing-key-change-me-0123456789")
JWT_VERIFYING_KEY = env_str("JWT_VERIFYING_KEY", "")
JWT_JWKS_URL = env_str("JWT_JWKS_URL", "")
JWT_AUDIENCE = env_str("JWT_AUDIENCE", "frontservice")
JWT_ISSUER = env_str("JWT_ISSUER", "")
JWT_TENANT_CLAIM = env_str("JWT_TENANT_CLAIM", "tenantId")
JWT_LEEWAY_SECONDS = env_int("JWT_LEEWAY_SECONDS", 30, minimum=0)
# JWKS keys (jobs/api/tokens.py JWKSCache): the fetch timeout; the least time between two fetches,
# whatever asks (a token with an unknown kid, a retry after a failure); the age after which the
# keys are refreshed in the background while the cached ones keep verifying.
JWT_JWKS_TIMEOUT_SECONDS = env_float("JWT_JWKS_TIMEOUT_SECONDS", 3.0, minimum=0.1)
JWT_JWKS_COOLDOWN_SECONDS = env_float("JWT_JWKS_COOLDOWN_SECONDS", 30.0, minimum=1.0)
JWT_JWKS_MAX_AGE_SECONDS = env_float("JWT_JWKS_MAX_AGE_SECONDS", 300.0, minimum=1.0)
if JWT_ALGORITHM.upper() == "NONE":
    raise ImproperlyConfigured("JWT_ALGORITHM=none would accept unsigned tokens.")
_JWT_ALGORITHMS = {f"{kind}{bits}" for kind in ("HS", "RS", "PS", "ES") for bits in (256, 384, 512)}
if JWT_ALGORITHM not in _JWT_ALGORITHMS | {"EdDSA"}:
    raise ImproperlyConfigured(f"JWT_ALGORITHM={JWT_ALGORITHM!r} is not a JWS algorithm we verify.")
if JWT_ALGORITHM.startswith("HS") and (JWT_VERIFYING_KEY or JWT_JWKS_URL):
    raise ImproperlyConfigured(
        f"JWT_ALGORITHM={JWT_ALGORITHM} is symmetric; JWT_VERIFYING_KEY/JWT_JWKS_URL are for "
        "RS*/ES* algorithms."
    )
# RFC 7518 §3.2: an HMAC key at least as long as the hash output (32 bytes for HS256).
_JWT_HMAC_MIN_BYTES = int(JWT_ALGORITHM[2:]) // 8 if JWT_ALGORITHM.startswith("HS") else 0
if len(JWT_SIGNING_KEY.encode()) < _JWT_HMAC_MIN_BYTES:
    raise ImproperlyConfigured(f"JWT_SIGNING_KEY must be at least {_JWT_HMAC_MIN_BYTES} bytes.")
if not JWT_ALGORITHM.startswith("HS") and bool(JWT_VERIFYING_KEY) == bool(JWT_JWKS_URL):
    raise ImproperlyConfigured(
        f"JWT_ALGORITHM={JWT_ALGORITHM} needs exactly one of JWT_VERIFYING_KEY and JWT_JWKS_URL."
    )
if JWT_JWKS_URL and not JWT_JWKS_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured(f"JWT_JWKS_URL={JWT_JWKS_URL!r} must be an http(s) URL.")
if not JWT_AUDIENCE:
    # Without an audience, a token minted for any other service of the issuer would do.
    raise ImproperlyConfigured("JWT_AUDIENCE must be set.")
if JWT_LEEWAY_SECONDS > 300:
    raise ImproperlyConfigured("JWT_LEEWAY_SECONDS is for clock skew; at most 300.")

# --- Staging area for inputs (shared by API and workers) -----------------------------------
STAGING_DIR = Path(env_str("STAGING_DIR", str(VAR_DIR / "staging")))
UPLOAD_CHUNK_SIZE = env_int("UPLOAD_CHUNK_SIZE", 1024 * 1024, minimum=4096)
# Multipart uploads are written straight to disk next to the staging area, so moving them
# into place is a rename, and no upload is ever held in memory.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.TemporaryFileUploadHandler"]
FILE_UPLOAD_TEMP_DIR = str(STAGING_DIR / "tmp")

# --- Downstream services -------------------------------------------------------------------
BLOBSERVICE_URL = env_str("BLOBSERVICE_URL", "http://127.0.0.1:8101")
JOBSERVICE_URL = env_str("JOBSERVICE_URL", "http://127.0.0.1:8102")
DOWNSTREAM_CONNECT_TIMEOUT = env_float("DOWNSTREAM_CONNECT_TIMEOUT", 3.05, minimum=0.1)
DOWNSTREAM_READ_TIMEOUT = env_float("DOWNSTREAM_READ_TIMEOUT", 30.0, minimum=0.1)

# Retries of a downstream step, scheduled on the job (frontservice/backoff.py has the schedule):
# capped exponential backoff with full jitter, for DOWNSTREAM_RETRY_HORIZON seconds of transient
# failures of one step, then its error state.
DOWNSTREAM_RETRY_BASE = env_float("DOWNSTREAM_RETRY_BASE", 0.5, minimum=0.0)
DOWNSTREAM_RETRY_CAP = env_float("DOWNSTREAM_RETRY_CAP", 30.0, minimum=0.0)
DOWNSTREAM_RETRY_HORIZON = env_float("DOWNSTREAM_RETRY_HORIZON", 3600.0, minimum=0.0)
# A downstream service's circuit (orchestration/breaker.py) opens after this many transient
# failures in a row; while open, one job per CIRCUIT_PROBE_INTERVAL seconds is let through.
CIRCUIT_FAILURE_THRESHOLD = env_int("CIRCUIT_FAILURE_THRESHOLD", 5, minimum=1)
CIRCUIT_PROBE_INTERVAL = env_float("CIRCUIT_PROBE_INTERVAL", 5.0, minimum=0.1)
# The dispatcher (orchestration/dispatch.py, run by `manage.py worker`) enqueues the jobs whose
# next attempt is due every DISPATCH_INTERVAL_SECONDS, up to DISPATCH_BATCH per pass.
DISPATCH_INTERVAL_SECONDS = env_float("DISPATCH_INTERVAL_SECONDS", 1.0, minimum=0.05)
DISPATCH_BATCH = env_int("DISPATCH_BATCH", 500, minimum=1)
# Task deliveries per job before it is put in an error state: a task that keeps killing its
# worker (or is redelivered forever) stops here.
ORCHESTRATION_MAX_ATTEMPTS = env_int("ORCHESTRATION_MAX_ATTEMPTS", 5, minimum=1)

# --- Task queue (django-q2) ----------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
Q_TIMEOUT = env_int("Q_TIMEOUT", 900, minimum=1)
Q_RETRY = env_int("Q_RETRY", 960, minimum=2)
if Q_RETRY <= Q_TIMEOUT:
    # A task still running when `retry` expires would be delivered a second time.
    raise ImproperlyConfigured(f"Q_RETRY ({Q_RETRY}) must be longer than Q_TIMEOUT ({Q_TIMEOUT}).")
# `manage.py worker` kills what is still running this long after SIGTERM (tasks are redelivered).
Q_STOP_GRACE = env_float("Q_STOP_GRACE", 30.0, minimum=0.0)
Q_CLUSTER = {
    "name": env_str("Q_CLUSTER_NAME", "frontservice"),
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    "timeout": Q_TIMEOUT,
    "retry": Q_RETRY,
    # Bounded redelivery: a task that keeps killing its worker stops being retried.
    "max_attempts": env_int("Q_MAX_ATTEMPTS", 5, minimum=1),
    # Our tasks record their own failures on the job; a failed task is not re-run by the broker.
    "ack_failures": True,
    "save_limit": env_int("Q_SAVE_LIMIT", 1000, minimum=0),
    "poll": env_float("Q_POLL", 0.2, minimum=0.01),
    "catch_up": False,
    "orm": None,
}
if REDIS_URL:
    # Redis has no delivery receipts: a task in flight is lost when its worker dies.
    Q_CLUSTER["redis"] = REDIS_URL
else:
    # MongoDB broker (default): a dequeued task is locked, not removed, until acknowledged,
    # so a task whose worker died is delivered again after `retry` seconds.
    Q_CLUSTER["mongo"] = {"host": MONGODB_URI}
    Q_CLUSTER["mongo_db"] = MONGODB_NAME
    Q_CLUSTER["broker_class"] = "frontservice.broker.ForkSafeMongo"
Q_CLUSTER.pop("orm")
# `manage.py worker` restarts its cluster when the sentinel has not cycled this long, or when
# tasks have waited this long with an idle worker and no task started (orchestration/supervisor.py).
WORKER_STALL_SECONDS = env_float("WORKER_STALL_SECONDS", 20.0, minimum=1.0)

# --- Completion webhooks (webhooks/, docs/api.md "Webhooks") -----------------------------------
# Deliveries are signed (webhooks/signing.py) with their tenant's own secret, given as a JSON
# object {"<tenant id>": "<secret>"} (or a file through WEBHOOK_TENANT_SECRETS_FILE). While a
# secret is rotated a tenant has two, ["<new>", "<old>"], and every delivery is signed with both.
# In development a tenant without one is signed with WEBHOOK_SECRET; production requires
# WEBHOOK_TENANT_SECRETS and never falls back, so no two tenants share a secret.
WEBHOOK_SECRET = env_str("WEBHOOK_SECRET", "dev-only-webhook-secret-change-me")
_tenant_secrets_text = env_str("WEBHOOK_TENANT_SECRETS", "")
try:
    _tenant_secrets = json.loads(_tenant_secrets_text) if _tenant_secrets_text else {}
except ValueError as exc:
    raise ImproperlyConfigured(f"WEBHOOK_TENANT_SECRETS is not JSON: {exc}") from exc
if not isinstance(_tenant_secrets, dict):
    raise ImproperlyConfigured("WEBHOOK_TENANT_SECRETS must be a JSON object.")
WEBHOOK_TENANT_SECRETS: dict[str, tuple[str, ...]] = {}
for _tenant, _value in _tenant_secrets.items():
    _values = [_value] if isinstance(_value, str) else _value
    if not (
        isinstance(_values, list)
        and 1 <= len(_values) <= 2
        and all(isinstance(secret, str) and secret for secret in _values)
    ):
        raise ImproperlyConfigured(
            f"WEBHOOK_TENANT_SECRETS[{_tenant!r}] must be a non-empty secret, or a list of two "
            "while it is rotated."
        )
    WEBHOOK_TENANT_SECRETS[_tenant] = tuple(_values)
# The SSRF guard (webhooks/ssrf.py) refuses callbacks to loopback, private, link-local, CGNAT,
# multicast, reserved and unspecified addresses, except on these hosts (exact names, or
# ".example.internal" for a domain and its subdomains) and networks (CIDRs). Cloud metadata
# addresses are refused whatever these say.
WEBHOOK_ALLOWED_HOSTS = [host.lower() for host in env_list("WEBHOOK_ALLOWED_HOSTS", "")]
try:
    WEBHOOK_ALLOWED_NETWORKS = [
        ipaddress.ip_network(network, strict=False)
        for network in env_list("WEBHOOK_ALLOWED_NETWORKS", "")
    ]
except ValueError as exc:
    raise ImproperlyConfigured(f"WEBHOOK_ALLOWED_NETWORKS: {exc}") from exc
WEBHOOK_URL_MAX_LENGTH = env_int("WEBHOOK_URL_MAX_LENGTH", 2048, minimum=16)
# Resolving a callback's host (at POST time and before each delivery attempt), and each attempt.
WEBHOOK_DNS_TIMEOUT = env_float("WEBHOOK_DNS_TIMEOUT", 2.0, minimum=0.1)
WEBHOOK_CONNECT_TIMEOUT = env_float("WEBHOOK_CONNECT_TIMEOUT", 3.05, minimum=0.1)
WEBHOOK_READ_TIMEOUT = env_float("WEBHOOK_READ_TIMEOUT", 10.0, minimum=0.1)
# Failed deliveries are tried again on frontservice/backoff.py's schedule, one attempt per task,
# for WEBHOOK_RETRY_HORIZON seconds after an event's first attempt, then FAILED. The cap is long:
# a receiver down for a day gets about one attempt per half hour, not one every few seconds.
WEBHOOK_RETRY_BASE = env_float("WEBHOOK_RETRY_BASE", 1.0, minimum=0.0)
WEBHOOK_RETRY_CAP = env_float("WEBHOOK_RETRY_CAP", 1800.0, minimum=0.0)
WEBHOOK_RETRY_HORIZON = env_float("WEBHOOK_RETRY_HORIZON", 86400.0, minimum=0.0)
_webhook_task_bound = WEBHOOK_DNS_TIMEOUT + WEBHOOK_CONNECT_TIMEOUT + WEBHOOK_READ_TIMEOUT
if _webhook_task_bound >= Q_TIMEOUT:
    # A delivery task claims its webhook for Q_TIMEOUT; one running longer would be killed by
    # django-q2 and its webhook taken over by a second task while the first still sends.
    raise ImproperlyConfigured(
        f"Q_TIMEOUT ({Q_TIMEOUT}) must exceed WEBHOOK_DNS_TIMEOUT + WEBHOOK_CONNECT_TIMEOUT + "
        f"WEBHOOK_READ_TIMEOUT = {_webhook_task_bound}."
    )
# What `manage.py worker` runs every DISPATCH_INTERVAL_SECONDS: each app's pass over the work
# whose next attempt is due (named, like tasks, so the worker tier does not import webhooks).
DISPATCHERS = [
    "orchestration.dispatch.jobs_dispatch_due",
    "webhooks.dispatch.webhooks_dispatch_due",
]

# --- Reconciler (orchestration/reconcile.py), a django-q2 schedule --------------------------
RECONCILE_EVERY_MINUTES = env_int("RECONCILE_EVERY_MINUTES", 1, minimum=1)
# CREATED/STORED untouched this long is stuck. Longer than a task may run (Q_TIMEOUT), so a job
# whose task is still running is not enqueued a second time.
RECONCILE_STUCK_AFTER = env_int("RECONCILE_STUCK_AFTER", Q_TIMEOUT + 60, minimum=1)
# SUBMITTED jobs nobody polls are refreshed from JobService at most this often.
RECONCILE_REFRESH_AFTER = env_int("RECONCILE_REFRESH_AFTER", 300, minimum=1)
# Jobs of each kind (stuck, unpolled) one pass looks at; each is acted on right after its claim.
RECONCILE_BATCH = env_int("RECONCILE_BATCH", 200, minimum=1)
# A pass stops claiming after this long, well inside the task's Q_TIMEOUT, so the scheduled pass
# ends by itself instead of being killed; what it did not reach, the next pass does.
RECONCILE_PASS_SECONDS = env_float("RECONCILE_PASS_SECONDS", min(120.0, Q_TIMEOUT / 2), minimum=1)
# Staged files of no job (and partial uploads) untouched this long are removed.
STAGING_ORPHAN_AFTER = env_int("STAGING_ORPHAN_AFTER", 3600, minimum=60)
# Inputs of STORED_ERROR jobs are kept this long for an operator retry.
STAGING_ERROR_RETENTION = env_int("STAGING_ERROR_RETENTION", 7 * 24 * 3600, minimum=0)

# --- Observability (docs/operations.md) -----------------------------
# One JSON object per log line (frontservice/request_log.py), or `plain` for a terminal.
LOG_FORMAT = env_str("LOG_FORMAT", "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be 'json' or 'plain'.")
# /metrics answers only `Authorization: Bearer <METRICS_TOKEN>` when set; open when empty
# (development only: production refuses to start without it).
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# The directory every process of one host writes its metrics to (prometheus_client reads the
# variable itself, at import, so a NAME_FILE does not work for it); empty: one process only.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", "")
# `manage.py worker` serves its host's metrics on this port when set (a worker container).
WORKER_METRICS_PORT = env_int("WORKER_METRICS_PORT", 0, minimum=0)
# /readyz: each check's timeout, and whether BlobService and JobService are asked too.
READYZ_TIMEOUT_SECONDS = env_float("READYZ_TIMEOUT_SECONDS", 1.0, minimum=0.1)
READYZ_CHECK_DOWNSTREAM = env_bool("READYZ_CHECK_DOWNSTREAM", False)

# --- Logging -------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "frontservice.request_log.JsonFormatter"},
        "plain": {"()": "frontservice.request_log.PlainFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # django.request logs a WARNING for every 4xx, beside the access line that already says it;
    # its 5xx lines (with the traceback) stay.
    "loggers": {"django.request": {"level": "ERROR"}},
}

# Largest accepted input (413 above it). Declared lengths are refused before reading.
MAX_INPUT_BYTES = env_int("MAX_INPUT_BYTES", 2 * 1024**3, minimum=1)
# A read from a client (headers or body) that waits this long without a byte fails: the
# request is refused (408 upload_timeout for a body) and nothing of it kept
# (frontservice/gunicorn_worker.py sets it on every connection).
UPLOAD_IDLE_TIMEOUT = env_float("UPLOAD_IDLE_TIMEOUT", 30.0, minimum=0.1)
# Bodies one API process reads at once, in all and per owner (jobs/api/uploads.py); beyond
# them 429 too_many_uploads before a byte is read. Keep UPLOADS_PER_PROCESS below
# GUNICORN_THREADS (default 8), so stalled uploads can never hold every thread.
UPLOADS_PER_PROCESS = env_int("UPLOADS_PER_PROCESS", 4, minimum=1)
UPLOADS_PER_OWNER = env_int("UPLOADS_PER_OWNER", 2, minimum=1)
if UPLOADS_PER_OWNER > UPLOADS_PER_PROCESS:
    raise ImproperlyConfigured("UPLOADS_PER_OWNER must not exceed UPLOADS_PER_PROCESS.")
# How long an Idempotency-Key is remembered (its answer replayed) after the first request.
IDEMPOTENCY_KEY_TTL_SECONDS = env_int("IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 3600, minimum=1)

# --- Limits (docs/api.md "Limits") --------------------------------------------------------------
# Requests per owner (jobs/api/throttling.py), as "60/min" (s, min, hour, day); "0" or empty: off.
RATE_LIMIT_SUBMIT = env_rate("RATE_LIMIT_SUBMIT", "60/min")
RATE_LIMIT_READ = env_rate("RATE_LIMIT_READ", "600/min")
# Jobs not final yet per owner (jobs/api/limits.py); 0: no cap.
MAX_ACTIVE_JOBS_PER_OWNER = env_int("MAX_ACTIVE_JOBS_PER_OWNER", 100, minimum=0)
# --- Listing and waiting (docs/api.md: listing, polling) ---------------
# GET /api/v1/job: the page size when `limit` is not given, and the largest `limit` accepted.
LIST_DEFAULT_LIMIT = env_int("LIST_DEFAULT_LIMIT", 20, minimum=1)
LIST_MAX_LIMIT = env_int("LIST_MAX_LIMIT", 100, minimum=1)
if LIST_DEFAULT_LIMIT > LIST_MAX_LIMIT:
    raise ImproperlyConfigured("LIST_DEFAULT_LIMIT must not exceed LIST_MAX_LIMIT.")
# Retry-After on a status answer of a job not final: about a tenth of the job's age, at least
# 1 s, at most this; young jobs are polled often, long ones do not hammer the API.
RETRY_AFTER_MAX_SECONDS = env_int("RETRY_AFTER_MAX_SECONDS", 30, minimum=1)
# `Prefer: wait=N` on status: the longest hold. Each held request keeps one gunicorn thread
# (GUNICORN_THREADS per process) busy for up to this long.
WAIT_MAX_SECONDS = env_int("WAIT_MAX_SECONDS", 30, minimum=0)
# Held requests per API process at once; beyond it `Prefer: wait` is not honoured (answered at
# once, as RFC 7240 allows), so waiting clients can never take every thread. Keep it below
# GUNICORN_THREADS (default 8).
WAIT_MAX_CONCURRENT = env_int("WAIT_MAX_CONCURRENT", 4, minimum=0)
# While holding: the local database is read this often (workers and the reconciler move jobs
# too), and JobService is asked after 1 s, then 2 s, 4 s... up to this interval.
WAIT_POLL_SECONDS = env_float("WAIT_POLL_SECONDS", 0.5, minimum=0.05)
WAIT_REFRESH_MAX_SECONDS = env_float("WAIT_REFRESH_MAX_SECONDS", 8.0, minimum=1.0)

# A cache every API process shares: Redis. The rate counters live in it when it is set, and in
# MongoDB otherwise (django-mongodb-backend has no cache backend).
CACHE_URL = env_str("CACHE_URL", "") or REDIS_URL
if CACHE_URL:
    if not CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r} must be a redis:// URL.")
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "frontservice",
        }
    }
else:
    # Per process, so nothing that must be shared between processes is kept in it.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Security headers and production (docs/operations.md) -----------------------
# Always: no MIME sniffing, no framing, no Referer to other origins, no shared window.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

if PRODUCTION:
    # TLS ends at the load balancer, which must say so in a header it sets itself (and never
    # passes on from a client), e.g. X-Forwarded-Proto; without one, Django sees plain HTTP.
    _proxy_ssl_header = env_str("DJANGO_SECURE_PROXY_SSL_HEADER", "")
    if _proxy_ssl_header:
        SECURE_PROXY_SSL_HEADER = (f"HTTP_{_proxy_ssl_header.upper().replace('-', '_')}", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    # Health checks and metric scrapes speak plain HTTP straight to the process.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    # Preloading is a promise about the whole domain, made by its owner: off unless asked for.
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

    # Fail closed, naming everything that is wrong at once (one deploy round trip, not five).
    _problems = []
    if DEBUG:
        _problems.append("DJANGO_DEBUG must be off")
    _secrets = {"DJANGO_SECRET_KEY": SECRET_KEY}
    if JWT_ALGORITHM.startswith("HS"):
        _secrets["JWT_SIGNING_KEY"] = JWT_SIGNING_KEY
    elif not (env_is_set("JWT_VERIFYING_KEY") or env_is_set("JWT_JWKS_URL")):
        _problems.append(f"JWT_VERIFYING_KEY or JWT_JWKS_URL must be set for {JWT_ALGORITHM}")
    for _name, _value in _secrets.items():
        if not env_is_set(_name):
            _problems.append(f"{_name} must be set")
        elif _value.startswith(DEVELOPMENT_VALUE_PREFIX):
            _problems.append(f"{_name} is a development value")
    if env_is_set("DJANGO_SECRET_KEY") and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
        # Django's own rule for a strong key (check --deploy, security.W009).
        _problems.append("DJANGO_SECRET_KEY must be at least 50 characters, not repetitive")
    # (The HMAC key length is checked for every mode in the JWT block above.)
    if JWT_JWKS_URL and not JWT_JWKS_URL.startswith("https://"):
        _problems.append("JWT_JWKS_URL must be https:// (the keys decide who is who)")
    if not env_is_set("JWT_AUDIENCE") or not JWT_AUDIENCE:
        _problems.append("JWT_AUDIENCE must be set")
    if not env_is_set("DJANGO_ALLOWED_HOSTS") or not ALLOWED_HOSTS:
        _problems.append("DJANGO_ALLOWED_HOSTS must be set")
    elif "*" in ALLOWED_HOSTS:
        # Job links and Location headers are built from the Host header.
        _problems.append("DJANGO_ALLOWED_HOSTS must name the hosts, not '*'")
    if not METRICS_TOKEN:
        # /metrics names tenants' traffic and the service's internals.
        _problems.append("METRICS_TOKEN must be set")
    if any(
        secret.startswith(DEVELOPMENT_VALUE_PREFIX)
        for values in WEBHOOK_TENANT_SECRETS.values()
        for secret in values
    ):
        _problems.append("WEBHOOK_TENANT_SECRETS holds a development value")
    if not WEBHOOK_TENANT_SECRETS:
        # One secret for every tenant lets whoever verifies deliveries forge other tenants'.
        _problems.append("WEBHOOK_TENANT_SECRETS must be set (each tenant its own secret)")
    if _problems:
        raise ImproperlyConfigured(
            "FRONTSERVICE_ENV=production refuses these settings: " + "; ".join(_problems) + "."
        )
