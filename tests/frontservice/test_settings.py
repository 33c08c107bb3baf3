"""frontservice/settings.py: the settings refuse to load without real secrets in production
(FRONTSERVICE_ENV=production) or with an unsafe token configuration anywhere, and are safe.

Each case loads the settings with exactly the environment it describes. The settings module
only reads the environment, so a refusal is seen by executing a fresh copy of it in this
process; what needs Django set up with those settings (the apps, `check --deploy`, the
middleware's answers) runs in a new process.
"""

import importlib.util
import json
import os
import secrets
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.support.stack import REPO

# Everything these tests decide; the rest of the environment (database, staging) is inherited.
_DECIDED = (
    "FRONTSERVICE_ENV",
    "DJANGO_SECRET_KEY",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "WEBHOOK_SECRET",
    "WEBHOOK_TENANT_SECRETS",
    "METRICS_TOKEN",
)
_DECIDED_PREFIXES = ("JWT_", "DJANGO_SECURE_")

PRODUCTION = {
    "FRONTSERVICE_ENV": "production",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "JWT_SIGNING_KEY": secrets.token_urlsafe(40),
    "JWT_AUDIENCE": "https://api.example.com",
    "DJANGO_ALLOWED_HOSTS": "api.example.com",
    "WEBHOOK_TENANT_SECRETS": json.dumps({"acme": secrets.token_urlsafe(32)}),
    "METRICS_TOKEN": secrets.token_urlsafe(32),
}
REQUIRED = [
    "DJANGO_SECRET_KEY",
    "JWT_SIGNING_KEY",
    "JWT_AUDIENCE",
    "DJANGO_ALLOWED_HOSTS",
    "WEBHOOK_TENANT_SECRETS",
    "METRICS_TOKEN",
]

HEADERS_SCRIPT = """
import django
django.setup()
from django.test import Client
client = Client()
secure = client.get("/healthz", secure=True)
for name in ("Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options",
             "Referrer-Policy", "Cross-Origin-Opener-Policy"):
    print(f"{name}: {secure.headers.get(name)}")
print("plain /healthz:", client.get("/healthz").status_code)
plain_api = client.post("/api/v1/job", data=b"x", content_type="text/plain")
print("plain /api/v1/job:", plain_api.status_code, plain_api.headers.get("Location"))
"""


def _environment(environment: dict[str, str]) -> dict[str, str]:
    """This process's environment without what the tests decide, then `environment`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name.removesuffix("_FILE") not in _DECIDED and not name.startswith(_DECIDED_PREFIXES)
    }
    env.update(DJANGO_SETTINGS_MODULE="frontservice.settings", **environment)
    return env


def _run(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = _environment(environment)
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )


def _setup(environment: dict[str, str]) -> subprocess.CompletedProcess:
    return _run(environment, "-c", "import django; django.setup()")


def _refusal(environment: dict[str, str], monkeypatch) -> str:
    """The message of the settings' refusal to load with `environment` (and nothing else)."""
    with monkeypatch.context() as patched:
        for name in list(os.environ):
            patched.delenv(name)
        for name, value in _environment(environment).items():
            patched.setenv(name, value)
        spec = importlib.util.spec_from_file_location(
            "settings_under_test", REPO / "frontservice" / "settings.py"
        )
        module = importlib.util.module_from_spec(spec)
        with pytest.raises(ImproperlyConfigured) as refused:
            spec.loader.exec_module(module)
    return str(refused.value)


def test_development_needs_nothing():
    result = _setup({})

    assert result.returncode == 0, result.stderr


def test_production_starts_with_every_setting_given():
    result = _setup(PRODUCTION)

    assert result.returncode == 0, result.stderr


def test_production_names_every_missing_variable_at_once(monkeypatch):
    message = _refusal({"FRONTSERVICE_ENV": "production"}, monkeypatch)

    for name in REQUIRED:
        assert f"{name} must be set" in message


@pytest.mark.parametrize("missing", REQUIRED)
def test_production_refuses_each_missing_variable(missing, monkeypatch):
    environment = {name: value for name, value in PRODUCTION.items() if name != missing}

    message = _refusal(environment, monkeypatch)

    assert f"{missing} must be set" in message
    for name in set(REQUIRED) - {missing}:
        assert name not in message


def test_production_refuses_the_development_values_of_env_example(monkeypatch):
    example = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        name, _, value = line.partition("=")
        if value and name.startswith(("DJANGO_", "JWT_", "WEBHOOK_")):
            example[name] = value

    message = _refusal({**example, "FRONTSERVICE_ENV": "production"}, monkeypatch)

    assert "DJANGO_SECRET_KEY is a development value" in message
    assert "JWT_SIGNING_KEY is a development value" in message
    # The example's shared WEBHOOK_SECRET is never used in production: each tenant needs its own.
    assert "WEBHOOK_TENANT_SECRETS must be set" in message


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"DJANGO_DEBUG": "true"}, "DJANGO_DEBUG must be off"),
        ({"DJANGO_SECRET_KEY": "short-but-not-a-dev-value"}, "DJANGO_SECRET_KEY must be at least"),
        ({"JWT_SIGNING_KEY": "sixteen-bytes-!!"}, "JWT_SIGNING_KEY must be at least 32 bytes"),
        ({"DJANGO_ALLOWED_HOSTS": "*"}, "DJANGO_ALLOWED_HOSTS must name the hosts"),
        (
            {"WEBHOOK_TENANT_SECRETS": '{"acme": "dev-only-webhook-secret-change-me"}'},
            "WEBHOOK_TENANT_SECRETS holds a development value",
        ),
        ({"JWT_ALGORITHM": "RS256", "JWT_SIGNING_KEY": ""}, "JWT_VERIFYING_KEY"),
        (
            {"JWT_ALGORITHM": "RS256", "JWT_JWKS_URL": "http://idp.example.com/jwks"},
            "JWT_JWKS_URL must be https://",
        ),
    ],
)
def test_production_refuses_unsafe_values(override, named, monkeypatch):
    message = _refusal({**PRODUCTION, **override}, monkeypatch)

    assert named in message


def test_production_reads_secrets_from_files(tmp_path):
    environment = dict(PRODUCTION)
    for name in ("DJANGO_SECRET_KEY", "JWT_SIGNING_KEY", "WEBHOOK_TENANT_SECRETS"):
        (tmp_path / name).write_text(environment.pop(name) + "\n")
        environment[f"{name}_FILE"] = str(tmp_path / name)

    result = _setup(environment)

    assert result.returncode == 0, result.stderr


# What `make run` writes to VAR_DIR/run.env (launcher/__main__.py), here with addresses no
# default has: the settings show which of them they took.
RUN_FILE = {
    "MONGODB_URI": "mongodb://127.0.0.1:1/?directConnection=true",
    "BLOBSERVICE_URL": "http://127.0.0.1:2",
    "JOBSERVICE_URL": "http://127.0.0.1:3",
}
SHOW_ADDRESSES = """
import json
from django.conf import settings
names = ("MONGODB_URI", "BLOBSERVICE_URL", "JOBSERVICE_URL")
print(json.dumps({name: getattr(settings, name) for name in names}))
"""


@pytest.mark.parametrize(
    ("environment", "reads_it"),
    [({}, True), (PRODUCTION, False)],
    ids=["development", "production"],
)
def test_only_development_reads_the_run_file_of_make_run(environment, reads_it, tmp_path):
    (tmp_path / "run.env").write_text("".join(f"{k}={v}\n" for k, v in RUN_FILE.items()))
    env = _environment({**environment, "FRONTSERVICE_VAR_DIR": str(tmp_path)})
    for name in RUN_FILE:  # neither given by the environment (the test session sets them)
        env.pop(name, None)
        env.pop(f"{name}_FILE", None)

    result = subprocess.run(
        [sys.executable, "-c", SHOW_ADDRESSES],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    addresses = json.loads(result.stdout)
    if reads_it:
        assert addresses == RUN_FILE
    else:
        # Production takes its addresses from its environment only (here: the defaults).
        assert set(addresses.values()).isdisjoint(RUN_FILE.values()), addresses


def test_production_passes_the_deploy_checks_but_hsts_preload():
    result = _run(PRODUCTION, "manage.py", "check", "--deploy")

    assert result.returncode == 0, result.stderr
    # Preloading HSTS is a promise about the whole domain, made by its owner (README).
    warnings = sorted(set(_deploy_warnings(result.stderr)))
    assert warnings == ["security.W021"], result.stderr


def test_production_with_hsts_preload_passes_every_deploy_check():
    environment = {**PRODUCTION, "DJANGO_SECURE_HSTS_PRELOAD": "true"}

    result = _run(environment, "manage.py", "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def _deploy_warnings(output: str) -> list[str]:
    return [part.split(")")[0] for part in output.split("(")[1:] if part.startswith("security.")]


def test_production_sends_the_security_headers_and_redirects_plain_http():
    environment = {**PRODUCTION, "DJANGO_ALLOWED_HOSTS": "testserver"}

    result = _run(environment, "-c", HEADERS_SCRIPT)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Strict-Transport-Security: max-age=31536000; includeSubDomains" in lines
    assert "X-Content-Type-Options: nosniff" in lines
    assert "X-Frame-Options: DENY" in lines
    assert "Referrer-Policy: same-origin" in lines
    assert "Cross-Origin-Opener-Policy: same-origin" in lines
    # Health checks speak plain HTTP to the process; everything else is sent to HTTPS.
    assert "plain /healthz: 200" in lines
    assert "plain /api/v1/job: 301 https://testserver/api/v1/job" in lines


@pytest.mark.parametrize(
    "env",
    [
        {"JWT_ALGORITHM": "none"},
        {"JWT_ALGORITHM": "HS1"},
        {"JWT_SIGNING_KEY": "too-short"},
        {"JWT_ALGORITHM": "RS256"},
        {"JWT_ALGORITHM": "HS256", "JWT_JWKS_URL": "https://issuer.example/jwks"},
        {"JWT_ALGORITHM": "RS256", "JWT_JWKS_URL": "file:///etc/passwd"},
        {"JWT_AUDIENCE": ""},
        {"JWT_LEEWAY_SECONDS": "3600"},
        {"JWT_JWKS_COOLDOWN_SECONDS": "0"},
    ],
    ids=lambda env: ",".join(f"{k}={v}" for k, v in env.items()),
)
def test_settings_refuse_unsafe_jwt_configuration(env, monkeypatch):
    # In development too (the default): an unsafe token configuration never loads.
    assert _refusal(env, monkeypatch)
