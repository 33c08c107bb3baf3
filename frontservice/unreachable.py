"""What a command says when the database cannot be reached: two lines, not a traceback.

`manage.py` catches what a command raised and asks `database_unreachable` whether it came from
an unreachable MongoDB (a server selection that timed out, a refused connection); if so it prints
the answer and exits 1. `--traceback` still shows the whole traceback.
"""

import re

from django.conf import settings
from pymongo.errors import ConnectionFailure

_CREDENTIALS = re.compile(r"//[^/@]*@")


def database_unreachable(exc: BaseException) -> str | None:
    """Two lines for an operator when `exc` (or what caused it) is an unreachable database."""
    cause = _connection_failure(exc)
    if cause is None:
        return None
    # pymongo's message goes on with its timeouts and the topology; the first part says why.
    reason = re.split(r" \(configured timeouts|, Timeout: ", str(cause), maxsplit=1)[0]
    uri = _CREDENTIALS.sub("//***@", settings.MONGODB_URI)
    return (
        f"Cannot reach the database at {uri} (MONGODB_URI): {reason}\n"
        "Check that MongoDB runs there (`make run` starts one, and commands read its address "
        f"from {settings.RUN_FILE} while it runs); --traceback shows the details."
    )


def _connection_failure(exc: BaseException) -> ConnectionFailure | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ConnectionFailure):  # ServerSelectionTimeoutError among them
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
