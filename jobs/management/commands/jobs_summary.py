"""`manage.py jobs_summary`: FrontService's state on one screen, or as JSON for machines."""

import json
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db.models import Count
from django.utils import timezone
from django_q.brokers.mongo import Mongo
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf
from django_q.models import Task
from django_q.signing import SignedPackage

from frontservice.broker import process_broker
from jobs import staging
from jobs.management.operator_options import DURATION_HELP, duration
from jobs.models import IdempotencyKey, Job
from jobs.states import Status

# Statuses a job waits in while FrontService or JobService works on it; the rest wait for an
# operator (the errors) or for nothing (final).
IN_FLIGHT = (Status.CREATED, Status.STORED)
OLDEST_SHOWN = 3


class Command(BaseCommand):
    help = (
        "Print a one-screen summary: jobs by status, stuck jobs, the task queue, recent task "
        "results, the staging area and the idempotency keys. --json for machines."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")
        parser.add_argument(
            "--tenant", metavar="TENANT", help="count this tenant's jobs only (the rest is global)"
        )
        parser.add_argument(
            "--stuck-after",
            type=duration,
            metavar="AGE",
            help=f"CREATED/STORED unchanged this long is stuck: {DURATION_HELP} "
            "(default: RECONCILE_STUCK_AFTER)",
        )
        parser.add_argument(
            "--refresh-after",
            type=duration,
            metavar="AGE",
            help=f"SUBMITTED/CANCELLING unchanged this long is overdue for a refresh: "
            f"{DURATION_HELP} (default: RECONCILE_REFRESH_AFTER)",
        )

    def handle(self, *args, **options):
        summary = jobs_summary(
            tenant=options["tenant"],
            stuck_after=_or(options["stuck_after"], settings.RECONCILE_STUCK_AFTER),
            refresh_after=_or(options["refresh_after"], settings.RECONCILE_REFRESH_AFTER),
        )
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
        else:
            self.stdout.write("\n".join(_text(summary)))


def _or(value: timedelta | None, default: float) -> float:
    return default if value is None else value.total_seconds()


def jobs_summary(*, tenant: str | None, stuck_after: float, refresh_after: float) -> dict:
    now = timezone.now()
    jobs = Job.objects.filter(tenant_id=tenant) if tenant else Job.objects.all()
    counts = dict(jobs.values_list("status").annotate(n=Count("pk")).order_by())
    return {
        "at": now.isoformat(),
        "tenant": tenant,
        "jobs": {
            "total": sum(counts.values()),
            "by_status": {status: counts.get(status, 0) for status in Status.values},
        },
        "stuck": {
            "created_or_stored": _idle(jobs, IN_FLIGHT, seconds=stuck_after, now=now),
            "submitted": _idle(jobs, (Status.SUBMITTED,), seconds=refresh_after, now=now),
            # A cancel JobService has not confirmed for this long: it keeps failing downstream.
            "cancelling": _idle(jobs, (Status.CANCELLING,), seconds=refresh_after, now=now),
        },
        "queue": _queue(now),
        "tasks": _tasks(now),
        "staging": _staging(),
        "idempotency_keys": {
            "count": IdempotencyKey.objects.count(),
            # Past expires_at but not removed yet: MongoDB's TTL monitor runs once a minute, so
            # more than a minute's worth here means it is not running.
            "expired": IdempotencyKey.objects.filter(expires_at__lte=now).count(),
            "ttl_seconds": settings.IDEMPOTENCY_KEY_TTL_SECONDS,
        },
    }


def _idle(jobs, statuses: tuple[str, ...], *, seconds: float, now: datetime) -> dict:
    idle = jobs.filter(status__in=statuses, updated_at__lte=now - timedelta(seconds=seconds))
    oldest = idle.order_by("updated_at").values_list("pk", "status", "updated_at")
    return {
        "statuses": list(statuses),
        "idle_seconds": seconds,
        "count": idle.count(),
        "oldest": [
            {"id": str(pk), "status": status, "idle_seconds": (now - updated_at).total_seconds()}
            for pk, status, updated_at in oldest[:OLDEST_SHOWN]
        ],
    }


def _queue(now: datetime) -> dict:
    """Tasks waiting in the broker, tasks delivered but not acknowledged, the oldest's age."""
    queue = {
        "broker": None,
        "name": Conf.PREFIX,
        "waiting": None,
        "in_flight": None,
        "oldest_waiting_seconds": None,
        "error": None,
    }
    try:
        broker = process_broker()
        queue["broker"] = _broker_kind(broker)
        queue["waiting"] = broker.queue_size()
        queue["in_flight"] = broker.lock_size()  # None for Redis: it has no delivery receipts
        enqueued = _oldest_enqueued(broker)
    except Exception as exc:  # the summary still prints when the broker is down
        queue["error"] = f"{type(exc).__name__}: {exc}"
        return queue
    if enqueued is not None:
        queue["oldest_waiting_seconds"] = max(0.0, (now - enqueued).total_seconds())
    return queue


def _broker_kind(broker) -> str:
    if isinstance(broker, Mongo):
        return "mongodb"
    if isinstance(broker, Redis):
        return "redis"
    return type(broker).__name__


def _oldest_enqueued(broker) -> datetime | None:
    if isinstance(broker, Mongo):
        # A waiting task's lock lies more than `retry` in the past (django-q2's Mongo broker);
        # its ObjectId, made when it was enqueued, keeps its time across redeliveries.
        waiting = {"lock": {"$lte": timezone.now() - timedelta(seconds=Conf.RETRY)}}
        first = broker.collection.find_one(waiting, {"_id": 1}, sort=[("_id", 1)])
        return first["_id"].generation_time if first else None
    if isinstance(broker, Redis):
        # The list's head is the next task out; async_task stamps `started` when enqueueing.
        head = broker.connection.lindex(broker.list_key, 0)
        return SignedPackage.loads(head)["started"] if head else None
    return None


def _tasks(now: datetime) -> dict:
    recent = Task.objects.filter(stopped__gte=now - timedelta(hours=1))
    last_hour = dict(recent.values_list("success").annotate(n=Count("pk")).order_by())
    kept = dict(Task.objects.values_list("success").annotate(n=Count("pk")).order_by())
    return {
        "succeeded_last_hour": last_hour.get(True, 0),
        "failed_last_hour": last_hour.get(False, 0),
        "successes_kept": kept.get(True, 0),
        "failures_kept": kept.get(False, 0),
        "save_limit": Conf.SAVE_LIMIT,
    }


def _staging() -> dict:
    """Staged inputs (named by job id) and partial uploads (tmp/), by count and bytes."""
    root = staging.staging_root()
    inputs = [path for path in _files(root) if _is_job_id(path.name)]
    partial = list(_files(root / "tmp"))
    return {
        "dir": str(root),
        "inputs": len(inputs),
        "input_bytes": sum(_size(path) for path in inputs),
        "partial_uploads": len(partial),
        "partial_bytes": sum(_size(path) for path in partial),
    }


def _files(directory):
    try:
        return [path for path in directory.iterdir() if path.is_file()]
    except FileNotFoundError:
        return []


def _is_job_id(name: str) -> bool:
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return True


def _size(path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0  # removed since the directory was listed (the reconciler, a worker)


def _text(summary: dict) -> list[str]:
    jobs, stuck, queue = summary["jobs"], summary["stuck"], summary["queue"]
    tasks, staged, keys = summary["tasks"], summary["staging"], summary["idempotency_keys"]
    scope = f"tenant {summary['tenant']}" if summary["tenant"] else "all tenants"
    at = summary["at"][:19].replace("T", " ")
    lines = [f"FrontService at {at} UTC ({scope})", ""]
    lines.append(f"Jobs by status ({jobs['total']} in all)")
    width = max(len(status) for status in jobs["by_status"])
    lines += [f"  {status:<{width}}  {n:>8}" for status, n in jobs["by_status"].items()]
    lines += ["", "Stuck jobs"]
    for idle in stuck.values():
        label = "/".join(idle["statuses"])
        lines.append(
            f"  {label} unchanged for {_age(idle['idle_seconds'])} or more: {idle['count']}"
        )
        lines += [
            f"    {job['id']}  {job['status']:<9}  {_age(job['idle_seconds'])}"
            for job in idle["oldest"]
        ]
    lines += ["", f"Queue {queue['name']} ({queue['broker'] or 'broker'} broker)"]
    if queue["error"]:
        lines.append(f"  unavailable: {queue['error']}")
    else:
        in_flight = "unknown" if queue["in_flight"] is None else queue["in_flight"]
        oldest = queue["oldest_waiting_seconds"]
        lines.append(
            f"  {queue['waiting']} waiting, {in_flight} in flight; oldest waiting: "
            + ("none" if oldest is None else _age(oldest))
        )
    lines += [
        "",
        f"Tasks in the last hour: {tasks['succeeded_last_hour']} succeeded, "
        f"{tasks['failed_last_hour']} failed",
        f"Task results kept: {tasks['successes_kept']} successes (save_limit "
        f"{tasks['save_limit']}), {tasks['failures_kept']} failures",
        f"Staging {staged['dir']}: {staged['inputs']} inputs ({_bytes(staged['input_bytes'])}), "
        f"{staged['partial_uploads']} partial uploads ({_bytes(staged['partial_bytes'])})",
        f"Idempotency keys: {keys['count']} ({keys['expired']} expired, not removed yet)",
    ]
    return lines


def _age(seconds: float) -> str:
    """A duration as its two largest units: 45s, 16m 40s, 2h 5m, 3d 4h."""
    rest = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts[:2]) or "0s"


def _bytes(n: int) -> str:
    size, unit = float(n), "B"
    for larger in ("KiB", "MiB", "GiB", "TiB"):
        if size < 1024:
            break
        size, unit = size / 1024, larger
    return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
