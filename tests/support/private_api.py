"""An API process of a test's own, beside the session's stack, with settings of its own."""

import contextlib
from collections.abc import Iterator

from tests.support.processes import ManagedProcess, free_port
from tests.support.stack import REPO, api_argv


@contextlib.contextmanager
def private_api(stack, **env: str) -> Iterator[str]:
    """Run the API on its own port with `env` over the stack's environment; yield its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = ManagedProcess.start(
        api_argv(port),
        env={**stack.env, **env},
        cwd=str(REPO),
        name="private-api",
        ready_url=f"{url}/healthz",
    )
    try:
        yield url
    finally:
        process.stop()
