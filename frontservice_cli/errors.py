"""The exit codes and the one exception type every failure is reported through."""

from enum import IntEnum


class ExitCode(IntEnum):
    """What the process's exit status means (docs/cli.md)."""

    OK = 0
    JOB_FAILED = 1  # the job ended in an error state or was cancelled
    USAGE = 2  # bad arguments, no token, an input file that cannot be read, an output not written
    API_ERROR = 3  # the API answered an HTTP error (its problem `code` is shown)
    CONNECTION = 4  # the API could not be reached, or the connection broke
    TIMEOUT = 5  # --timeout passed while waiting, or the API did not answer in time
    BUG = 70  # an unexpected error in this client (sysexits' EX_SOFTWARE); please report it
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
    BROKEN_PIPE = 141  # stdout's reader went away (`| head`), as shells report SIGPIPE


class CliError(Exception):
    """A failure shown as one line on stderr; the process exits with `exit_code`."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UsageError(CliError):
    exit_code = ExitCode.USAGE


class JobFailed(CliError):
    exit_code = ExitCode.JOB_FAILED


class ConnectionFailed(CliError):
    exit_code = ExitCode.CONNECTION


class TimedOut(CliError):
    exit_code = ExitCode.TIMEOUT


class ApiError(CliError):
    """An HTTP error answer, with the problem document's `code` and `detail` when it has one."""

    exit_code = ExitCode.API_ERROR

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None,
        detail: str | None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after = retry_after
