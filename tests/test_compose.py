"""docker-compose.yml, checked without a Docker engine (none runs on these machines).

The file is validated against the Compose Specification's JSON schema (schema/compose-spec.json
of the compose-spec/compose-spec repository, Apache-2.0), as vendored, with its license, by the
check-jsonschema package (a dev dependency): the schema is read from that package, not copied
into this repository. Then the topology's promises are checked one by one, and `.env.example`
against the settings that read the environment.
"""

import importlib.resources
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
ENV_READERS = re.compile(r'env_(?:str|int|float|bool|list|rate|is_set)\(\s*"([A-Z0-9_]+)"')


def _compose_schema() -> dict:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def test_it_follows_the_compose_specification(compose):
    schema = _compose_schema()
    validator = jsonschema.validators.validator_for(schema)
    # No format checker: the schema's "format" values (durations, ports) are annotations here.
    errors = sorted(validator(schema).iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_every_service_has_a_healthcheck_or_is_a_one_shot_job(services):
    for name, service in services.items():
        one_shot = service.get("restart") == "no"
        assert one_shot or "test" in service.get("healthcheck", {}), name


def test_api_and_worker_run_replicated_with_the_staging_volume(services):
    for name in ("api", "worker"):
        assert services[name]["deploy"]["replicas"] >= 2, name
        assert "staging:/staging" in services[name]["volumes"], name
        assert services[name]["environment"]["STAGING_DIR"] == "/staging"
        assert "/run/metrics" in services[name]["tmpfs"], name
        assert services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/run/metrics"
    assert services["worker"]["command"] == ["python", "manage.py", "worker"]
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])


def test_the_balancer_reaches_the_api_replicas_by_service_name(services):
    conf = (REPO / "deploy" / "nginx.conf").read_text()
    assert re.search(r"server api:8000\b", conf)
    assert "resolver 127.0.0.11" in conf
    assert services["lb"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_mongodb_is_a_replica_set_initialised_by_a_one_shot_job(services):
    assert "--replSet" in services["mongo"]["command"]
    init = services["mongo-init"]
    assert init["restart"] == "no"
    assert "rs.initiate" in " ".join(init["command"])
    assert "replicaSet=rs0" in services["api"]["environment"]["MONGODB_URI"]


def test_redis_is_there_for_the_shared_counters(services):
    assert services["redis"]["image"].startswith("redis:")
    assert services["api"]["environment"]["CACHE_URL"].startswith("redis://redis:")


def test_the_balancer_bounds_slow_and_greedy_clients():
    conf = (REPO / "deploy" / "nginx.conf").read_text()

    # Headers read whole and in time, bodies and answers that stall dropped, connections capped.
    for directive in (
        "client_header_timeout 10s;",
        "client_body_timeout 30s;",
        "send_timeout 60s;",
        "limit_conn frontservice_per_address ",
        "limit_conn frontservice_per_token ",
        "limit_conn_status 429;",
    ):
        assert directive in conf, directive
    assert "limit_conn_zone $binary_remote_addr zone=frontservice_per_address" in conf


def test_the_api_trusts_the_one_proxy_in_front_of_it_for_admin_logins(services):
    assert services["api"]["environment"]["ADMIN_LOGIN_PROXY_COUNT"] == "1"


def test_env_example_lists_exactly_the_variables_that_are_read():
    read = set(ENV_READERS.findall((REPO / "frontservice" / "settings.py").read_text()))
    # gunicorn's own settings come from the environment too, in gunicorn.conf.py.
    gunicorn = (REPO / "gunicorn.conf.py").read_text()
    read |= set(re.findall(r'os\.environ\.get\("([A-Z0-9_]+)"', gunicorn))
    listed = set(
        re.findall(r"^([A-Z][A-Z0-9_]*)=", (REPO / ".env.example").read_text(), re.MULTILINE)
    )

    assert sorted(read - listed) == [], "read but not in .env.example"
    assert sorted(listed - read) == [], "in .env.example but never read"
