"""`python -m frontservice_cli`: submit, status, output, list and cancel jobs from a shell.

stdout carries the result (a job id, a table, a JSON document with --json, the output's bytes);
stderr carries progress and every error, as one readable line. Exit codes: errors.ExitCode.
"""

import argparse
import contextlib
import json
import math
import mimetypes
import os
import sys
from time import monotonic, sleep

from frontservice_cli import __version__
from frontservice_cli.client import Client
from frontservice_cli.errors import (
    ApiError,
    CliError,
    ExitCode,
    JobFailed,
    TimedOut,
    UsageError,
)
from frontservice_cli.progress import StatusLine, download, open_input

DEFAULT_URL = "http://127.0.0.1:8000"

# The server's statuses from which a job never moves on by itself. Hard-coded on purpose: the
# client depends on no server code. CANCELLED arrives with the cancel endpoint.
COMPLETED = "EXECUTION_COMPLETED"
FINAL = frozenset({COMPLETED, "STORED_ERROR", "SUBMITTED_ERROR", "EXECUTION_ERROR", "CANCELLED"})

# Waiting: how long each status request asks the server to hold it (`Prefer: wait=N`; the
# server caps it at its own maximum), and, when the server does not hold requests, how often to
# poll: its Retry-After, kept within these bounds, or the default.
WAIT_PER_REQUEST = 30
POLL_DEFAULT = 1.0
POLL_MIN, POLL_MAX = 0.5, 30.0

EPILOG = """\
environment:
  FRONTSERVICE_URL     the API's base URL (--url), default http://127.0.0.1:8000
  FRONTSERVICE_TOKEN   the bearer token (--token)

exit codes:
  0    success
  1    the job ended in an error state or was cancelled (also: output of such a job)
  2    usage: bad arguments, no token, an input that cannot be read, an output not written
  3    the API answered an error (its problem code and detail are shown)
  4    the API could not be reached, or the connection broke
  5    --timeout passed while waiting, or the API did not answer in time
  70   an unexpected error in this client (a bug; please report it)
  130  interrupted (Ctrl-C)
  141  stdout was closed by its reader (`| head`), as for SIGPIPE
"""


class Parser(argparse.ArgumentParser):
    """argparse, with its usage errors as one line like every other error."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser() -> Parser:
    parser = Parser(
        prog="frontservice",
        description="Submit jobs to FrontService and fetch their results.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str) -> Parser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        # The global options are accepted after the command too (`submit f --json`).
        _add_global_options(sub, defaults=False)
        return sub

    submit = command("submit", "Submit FILE (`-` for stdin) as a new job; print its id.")
    submit.add_argument("file", metavar="FILE")
    _add_wait_options(submit)
    submit.add_argument(
        "--output",
        metavar="PATH",
        help="wait, then write the output to PATH (`-`: stdout); implies --wait",
    )
    submit.add_argument("--callback-url", metavar="URL", help="POST the job here when final")
    submit.add_argument("--idempotency-key", metavar="K", help="retry safely with the same key")
    submit.add_argument(
        "--content-type",
        metavar="TYPE",
        help="the input's media type (default: guessed from FILE's name, else "
        "application/octet-stream); the output has the same type",
    )
    submit.set_defaults(handler=cmd_submit)

    status = command("status", "Show a job's status.")
    status.add_argument("job_id", metavar="ID")
    _add_wait_options(status)
    status.set_defaults(handler=cmd_status)

    output = command("output", "Write a completed job's output to PATH or stdout.")
    output.add_argument("job_id", metavar="ID")
    output.add_argument("path", metavar="PATH", nargs="?", help="default (or `-`): stdout")
    output.set_defaults(handler=cmd_output)

    listing = command("list", "List your jobs, newest first.")
    listing.add_argument(
        "--status",
        dest="statuses",
        metavar="S",
        nargs="+",
        action="extend",
        default=[],
        help="only jobs in these statuses (several, or comma-separated)",
    )
    listing.add_argument("--limit", type=_positive_int, metavar="N", help="jobs per page")
    listing.add_argument("--all", action="store_true", help="follow every page, not just one")
    listing.set_defaults(handler=cmd_list)

    cancel = command("cancel", "Cancel a job.")
    cancel.add_argument("job_id", metavar="ID")
    cancel.set_defaults(handler=cmd_cancel)
    return parser


def _add_wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="wait until the job is final")
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        help="give up waiting after S seconds (exit 5); implies --wait",
    )


def _add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # On the subcommands the defaults are SUPPRESS, so an option given before the command is
    # not reset by the subcommand's own default.
    def default(value):
        return value if defaults else argparse.SUPPRESS

    group = parser.add_argument_group("connection and output")
    group.add_argument(
        "--url", default=default(None), help=f"the API's base URL (default: {DEFAULT_URL})"
    )
    group.add_argument("--token", default=default(None), help="the bearer token")
    group.add_argument(
        "--token-file", default=default(None), metavar="PATH", help="read the token from PATH"
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print JSON documents instead of text",
    )
    group.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=default(None),
        help="progress bars and the live status line (default: when stderr is a terminal)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.handler(args, _client(args)))
    except CliError as exc:
        _error(exc.message)
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`| head`): not an error worth a message. Python
        # would complain again when it flushes stdout at exit, so point it at /dev/null.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.BROKEN_PIPE
    except Exception as exc:
        # A bug here: still one line, not a traceback, and an exit code of its own.
        _error(f"unexpected error in the client: {type(exc).__name__}: {exc}")
        return ExitCode.BUG


def _error(message: str) -> None:
    # If stderr itself is gone, the exit code still says it.
    with contextlib.suppress(OSError):
        print(f"frontservice: {message}", file=sys.stderr, flush=True)


def _client(args) -> Client:
    url = args.url or os.environ.get("FRONTSERVICE_URL") or DEFAULT_URL
    return Client(url, _token(args))


def _token(args) -> str:
    if args.token:
        token = args.token
    elif args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as file:
                token = file.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise UsageError(f"cannot read the token file {args.token_file}: {reason}") from exc
    else:
        token = os.environ.get("FRONTSERVICE_TOKEN", "")
    token = token.strip()
    if not token:
        raise UsageError("no token: pass --token or --token-file, or set FRONTSERVICE_TOKEN")
    if not token.isascii() or not token.isprintable() or " " in token:
        raise UsageError("the token is not a bearer token (visible ASCII characters only)")
    return token


def _progress(args) -> bool:
    return args.progress if args.progress is not None else sys.stderr.isatty()


def _print_json(document) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False), flush=True)


# -- commands


def cmd_submit(args, client: Client) -> int:
    to_stdout = args.output == "-"
    if to_stdout and args.json:
        raise UsageError("--output - and --json both want stdout; pick one")
    content_type = args.content_type or _guess_type(args.file)
    with open_input(args.file, progress=_progress(args)) as body:
        job = client.submit(
            body,
            content_type=content_type,
            callback_url=args.callback_url,
            idempotency_key=args.idempotency_key,
        )
    job_id = job["id"]
    if not (args.wait or args.output or args.timeout is not None):
        if args.json:
            _print_json(job)
        else:
            print(job_id, flush=True)
        return ExitCode.OK
    if not args.json:
        # The id first, so it is known even if the wait is interrupted.
        print(job_id, file=sys.stderr if to_stdout else sys.stdout, flush=True)
    job = _wait(client, job, args)
    if args.output:
        _save_output(client, job_id, args.output, args)
    if args.json:
        _print_json(job)
    return ExitCode.OK


def _guess_type(name: str) -> str:
    guessed = mimetypes.guess_type(name)[0] if name != "-" else None
    return guessed or "application/octet-stream"


def cmd_status(args, client: Client) -> int:
    job = client.status(args.job_id).job
    if args.wait or args.timeout is not None:
        job = _wait(client, job, args)
    if args.json:
        _print_json(job)
    else:
        print(_describe(job), flush=True)
    return ExitCode.OK


def cmd_output(args, client: Client) -> int:
    _save_output(client, args.job_id, args.path, args)
    return ExitCode.OK


def cmd_list(args, client: Client) -> int:
    statuses = [part.strip() for value in args.statuses for part in value.split(",")]
    statuses = [status for status in statuses if status]
    page = client.list_jobs(statuses=statuses, limit=args.limit)
    jobs = list(page.get("results", []))
    if not args.json:
        _print_rows(jobs, header=True)
    while args.all and page.get("next"):
        page = client.list_jobs(statuses=statuses, limit=args.limit, next_url=page["next"])
        results = page.get("results", [])
        if args.json:
            jobs.extend(results)
        else:
            _print_rows(results, header=False)
    if args.json:
        _print_json({"results": jobs, "next": page.get("next")})
    elif page.get("next"):
        print("frontservice: more jobs: pass --all to list them all", file=sys.stderr)
    return ExitCode.OK


def cmd_cancel(args, client: Client) -> int:
    status_code, job = client.cancel(args.job_id)
    if args.json:
        _print_json(job)
    elif status_code == 202:
        print(f"{job['id']}  {job['status']}  (the cancel is in flight; see `status --wait`)")
    else:
        print(f"{job['id']}  {job['status']}")
    return ExitCode.OK


# -- shared steps


def _wait(client: Client, job: dict, args) -> dict:
    """Wait until the job is final; raise JobFailed unless it completed, TimedOut at --timeout."""
    job_id = job["id"]
    deadline = monotonic() + args.timeout if args.timeout is not None else None
    with StatusLine(job_id, live=_progress(args)) as line:
        line.show(job["status"])
        while job["status"] not in FINAL:
            remaining = deadline - monotonic() if deadline is not None else None
            if remaining is not None and remaining <= 0:
                if args.json:
                    _print_json(job)
                raise TimedOut(
                    f"job {job_id} is still {job['status']} after {args.timeout:g} s (--timeout)"
                )
            job = _next_status(client, job, remaining)
            line.show(job["status"])
    if job["status"] != COMPLETED:
        if args.json:
            _print_json(job)
        raise JobFailed(f"job {job_id} ended in {job['status']}{_error_text(job)}")
    return job


def _next_status(client: Client, job: dict, remaining: float | None) -> dict:
    """One status request that the server may hold (`Prefer: wait`); if it answers at once,
    the pause its Retry-After asks for (else the default) before answering."""
    wait = WAIT_PER_REQUEST
    if remaining is not None:
        wait = max(1, min(WAIT_PER_REQUEST, math.ceil(remaining)))
    started = monotonic()
    try:
        answer = client.status(job["id"], wait=wait)
    except ApiError as exc:
        # Rate-limited while waiting: back off as told, then the caller asks again.
        if exc.status != 429:
            raise
        _pause(exc.retry_after, remaining)
        return job
    if answer.job["status"] in FINAL:
        return answer.job
    # A server that held the request has already spent the time; ask again at once. One that
    # did not (or returned early for any reason) gets the pause it asked for.
    if not (answer.waited and monotonic() - started >= 1):
        _pause(answer.retry_after, remaining)
    return answer.job


def _pause(retry_after: float | None, remaining: float | None) -> None:
    pause = POLL_DEFAULT if retry_after is None else min(max(retry_after, POLL_MIN), POLL_MAX)
    if remaining is not None:
        pause = min(pause, max(remaining, 0))
    sleep(pause)


def _save_output(client: Client, job_id: str, path: str | None, args) -> None:
    size = download(
        lambda offset, etag: client.open_output(job_id, offset=offset, etag=etag),
        path,
        progress=_progress(args),
    )
    if path not in (None, "-") and not args.json:
        print(f"frontservice: wrote {size} bytes to {path}", file=sys.stderr, flush=True)


def _error_text(job: dict) -> str:
    error = job.get("error")
    if not isinstance(error, dict):
        return ""
    where = error.get("service") or "?"
    if error.get("status_code") is not None:
        where += f", HTTP {error['status_code']}"
    code = f" [{error['code']}]" if error.get("code") else ""
    return f": {error.get('message') or 'no message'} ({where}){code}"


# The document's fields in the order a person reads them; others follow, links are left out.
_FIELD_ORDER = [
    "id",
    "status",
    "created_at",
    "submitted_at",
    "finished_at",
    "updated_at",
    "attempts",
    "input_size",
    "content_type",
    "callback_url",
]


def _describe(job: dict) -> str:
    names = [name for name in _FIELD_ORDER if name in job]
    names += [name for name in job if name not in names and name not in ("error", "links")]
    lines = [f"{name + ':':<14}{job[name]}" for name in names if job.get(name) not in (None, "")]
    if job.get("error"):
        lines.append(f"{'error:':<14}{_error_text(job).removeprefix(': ')}")
    return "\n".join(lines)


def _print_rows(jobs: list[dict], *, header: bool) -> None:
    if header:
        print(f"{'ID':<36}  {'STATUS':<19}  {'CREATED':<32}  SIZE")
    for job in jobs:
        size = job.get("input_size")
        print(
            f"{job.get('id', ''):<36}  {job.get('status', ''):<19}  "
            f"{job.get('created_at', ''):<32}  {'' if size is None else size}"
        )
    sys.stdout.flush()
