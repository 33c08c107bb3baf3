"""Settings from the environment, through helpers that fail loudly.

Every variable may also be given as ``NAME_FILE`` (a path whose content is the value), so
secrets can come from mounted files instead of the process environment. In development, a value
set neither way may come from the run file `make run` writes (``read_run_file``).
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_REQUIRED = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# What `make run` chose (its ports, so the database's and the services' URLs), read by the
# development settings: every `manage.py` command then works on whatever `make run` started.
_run_file_values: dict[str, str] = {}


def _raw(name: str) -> str | None:
    if name in os.environ:
        return os.environ[name]
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_name!r} cannot be read: {exc}") from exc
    return _run_file_values.get(name)


def read_run_file(path: Path) -> None:
    """Take NAME=value lines from `path` (if it exists) as values under the environment's."""
    _run_file_values.clear()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return
    for line in text.splitlines():
        name, equals, value = line.partition("=")
        if equals and name.strip() and not name.lstrip().startswith("#"):
            _run_file_values[name.strip()] = value.strip()


def env_str(name: str, default=_REQUIRED) -> str:
    value = _raw(name)
    if value is None:
        if default is _REQUIRED:
            raise ImproperlyConfigured(f"The environment variable {name} is required.")
        return default
    return value


def env_int(name: str, default=_REQUIRED, *, minimum: int | None = None) -> int:
    value = env_str(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from exc
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}.")
    return number


def env_float(name: str, default=_REQUIRED, *, minimum: float | None = None) -> float:
    value = env_str(name, default)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from exc
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}.")
    return number


def env_bool(name: str, default=_REQUIRED) -> bool:
    value = env_str(name, default)
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false).")


def env_list(name: str, default=_REQUIRED) -> list[str]:
    value = env_str(name, default)
    if isinstance(value, list):
        return value
    return [item.strip() for item in value.split(",") if item.strip()]


def env_is_set(name: str) -> bool:
    """Whether NAME (or NAME_FILE) is in the environment: given on purpose, not defaulted (nor
    taken from the run file)."""
    return name in os.environ or bool(os.environ.get(f"{name}_FILE"))


_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_PERIODS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def env_rate(name: str, default=_REQUIRED) -> tuple[int, int] | None:
    """A rate such as ``60/min`` as (requests, period in seconds); None for "0" or empty (off)."""
    value = env_str(name, default).strip()
    if value in ("", "0"):
        return None
    count, _, period = value.partition("/")
    try:
        requests = int(count)
        seconds = _PERIODS[period.strip().lower()]
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate like 60/min (periods: s, min, hour, day; 0 = off)."
        ) from exc
    if requests < 1:
        raise ImproperlyConfigured(f"{name}={value!r}: use 0 to switch the limit off.")
    return requests, seconds
