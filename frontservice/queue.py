"""Enqueueing a task: the one place that hands work to django-q2, for every app.

A task carries a job id, never a blob or a document: the task reads the job when it runs, so a
redelivered or late task acts on the job as it is then.

The task is django-q2's own package (what `django_q.tasks.async_task` would put on the broker,
signed the same way), built here with less work per task: every POST enqueues one, and
async_task spends on each a human-readable name this project never uses (ours name the job) and
a new signer. The broker's own `enqueue` puts it on the queue, MongoDB or Redis alike.
"""

import functools
import logging
import uuid

from django.core.signing import TimestampSigner
from django.utils import timezone
from django_q.conf import Conf
from django_q.conf import logger as django_q_logger
from django_q.signals import pre_enqueue
from django_q.signing import PickleSerializer

from frontservice.broker import JOBS, process_broker

logger = logging.getLogger(__name__)


def enqueue_task(
    func: str, job_id: uuid.UUID, *, group: str, if_failed: str, queue: str = JOBS
) -> bool:
    """Queue `func(job_id)` as task `<group>-<job id>` on `queue` (frontservice.broker.QUEUES);
    False when the broker is unreachable, logged with `if_failed` (what becomes of the job
    then)."""
    try:
        broker = process_broker(queue)
        enqueue_id = broker.enqueue(
            task_package(func, str(job_id), name=f"{group}-{job_id}", group=group)
        )
    except Exception:
        logger.exception("job %s: %s", job_id, if_failed)
        return False
    # The line async_task logs for every task it enqueues.
    django_q_logger.info(f"Enqueued [{broker.list_key}] {enqueue_id}")
    return True


def task_package(func: str, *args, name: str, group: str) -> str:
    """The signed task `async_task(func, *args, task_name=name, group=group)` enqueues.

    The same keys and values in the same order, pickled and signed as django_q.signing does
    (tests/frontservice/test_queue.py compares the two). Q_CLUSTER never sets `sync` (run the
    task in the caller), the one async_task option that is not a key of the package.
    """
    task = {"id": uuid.uuid4().hex, "name": name, "func": func, "args": args, "group": group}
    if Conf.CACHED:
        task["cached"] = Conf.CACHED
    if Conf.ACK_FAILURES:
        task["ack_failure"] = Conf.ACK_FAILURES
    task["kwargs"] = {}
    task["started"] = timezone.now()
    pre_enqueue.send(sender="django_q", task=task)
    return _signer().sign_object(task, serializer=PickleSerializer, compress=Conf.COMPRESSED)


@functools.cache
def _signer() -> TimestampSigner:
    # django_q.signing.SignedPackage.dumps signs with a TimestampSigner of these, made anew for
    # every task; the key and salt are settings, so one serves the whole process.
    return TimestampSigner(key=Conf.SECRET_KEY, salt=Conf.PREFIX)
