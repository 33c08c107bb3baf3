"""FrontService settings: every value comes from the environment (see .env.example).

Defaults run the whole service on this machine with the embedded MongoDB (``make run``);
production sets MONGODB_URI, the downstream URLs, the JWT key and audience.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from frontservice.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("FRONTSERVICE_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)
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
    "frontservice.apps.MongoDjangoQConfig",
    "jobs",
    "orchestration",
]

# The contrib apps and django_q ship migrations with AutoField; these are regenerated with
# ObjectIdAutoField (``manage.py makemigrations admin auth contenttypes django_q``).
MIGRATION_MODULES = {
    "admin": "frontservice.mongo_migrations.admin",
    "auth": "frontservice.mongo_migrations.auth",
    "contenttypes": "frontservice.mongo_migrations.contenttypes",
    "django_q": "frontservice.mongo_migrations.django_q",
}

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

# --- API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["jobs.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Only the upload view parses bodies, and it streams them itself.
    "DEFAULT_PARSER_CLASSES": [],
    "EXCEPTION_HANDLER": "jobs.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
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
if JWT_ALGORITHM.upper() == "NONE":
    raise ImproperlyConfigured("JWT_ALGORITHM=none would accept unsigned tokens.")
if JWT_ALGORITHM.startswith("HS") and (JWT_VERIFYING_KEY or JWT_JWKS_URL):
    raise ImproperlyConfigured(
        f"JWT_ALGORITHM={JWT_ALGORITHM} is symmetric; JWT_VERIFYING_KEY/JWT_JWKS_URL are for "
        "RS*/ES* algorithms."
    )

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

# Retries of one downstream call inside a task (orchestration/retry.py has the schedule).
DOWNSTREAM_RETRY_ATTEMPTS = env_int("DOWNSTREAM_RETRY_ATTEMPTS", 6, minimum=1)
DOWNSTREAM_RETRY_BASE = env_float("DOWNSTREAM_RETRY_BASE", 0.5, minimum=0.0)
DOWNSTREAM_RETRY_CAP = env_float("DOWNSTREAM_RETRY_CAP", 30.0, minimum=0.0)
DOWNSTREAM_RETRY_DEADLINE = env_float("DOWNSTREAM_RETRY_DEADLINE", 300.0, minimum=0.0)
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
if 2 * (DOWNSTREAM_RETRY_DEADLINE + DOWNSTREAM_READ_TIMEOUT) >= Q_TIMEOUT:
    # A task makes two retried calls (store, submit); both must fit in the task's timeout, or
    # django-q2 kills the worker in the middle of a retry loop.
    raise ImproperlyConfigured(
        f"Q_TIMEOUT ({Q_TIMEOUT}) must exceed 2 x (DOWNSTREAM_RETRY_DEADLINE + "
        f"DOWNSTREAM_READ_TIMEOUT) = {2 * (DOWNSTREAM_RETRY_DEADLINE + DOWNSTREAM_READ_TIMEOUT)}."
    )
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
    Q_CLUSTER["broker_class"] = "orchestration.broker.ForkSafeMongo"
Q_CLUSTER.pop("orm")

# --- Reconciler (orchestration/reconcile.py), a django-q2 schedule --------------------------
RECONCILE_EVERY_MINUTES = env_int("RECONCILE_EVERY_MINUTES", 1, minimum=1)
# CREATED/STORED untouched this long is stuck. Longer than a task may run (Q_TIMEOUT), so a job
# whose task is still running is not enqueued a second time.
RECONCILE_STUCK_AFTER = env_int("RECONCILE_STUCK_AFTER", Q_TIMEOUT + 60, minimum=1)
# SUBMITTED jobs nobody polls are refreshed from JobService at most this often.
RECONCILE_REFRESH_AFTER = env_int("RECONCILE_REFRESH_AFTER", 300, minimum=1)
RECONCILE_BATCH = env_int("RECONCILE_BATCH", 500, minimum=1)
# Staged files of no job (and partial uploads) untouched this long are removed.
STAGING_ORPHAN_AFTER = env_int("STAGING_ORPHAN_AFTER", 3600, minimum=60)
# Inputs of STORED_ERROR jobs are kept this long for an operator retry.
STAGING_ERROR_RETENTION = env_int("STAGING_ERROR_RETENTION", 7 * 24 * 3600, minimum=0)

# --- Logging -------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Largest accepted input (413 above it). Declared lengths are refused before reading.
MAX_INPUT_BYTES = env_int("MAX_INPUT_BYTES", 2 * 1024**3, minimum=1)
# How long an Idempotency-Key is remembered (its answer replayed) after the first request.
IDEMPOTENCY_KEY_TTL_SECONDS = env_int("IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 3600, minimum=1)
