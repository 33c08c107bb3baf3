"""The webhooks app's receiver (webhooks/receivers.py): a status change that made a webhook
pending (a job with a callback became final) enqueues its delivery; no other change does.

The changes are the domain's own (jobs.services), on the real database; what was enqueued is
read off the real broker by running it (run_tasks), to a real receiver on loopback.
"""

import pytest

from frontservice.broker import JOBS, QUEUES, WEBHOOKS, process_broker
from jobs.models import Job, WebhookStatus
from jobs.services import job_settle, job_transition
from tests.support.inprocess import run_tasks
from tests.support.webhooks import Receiver
from tests.support.worker import a_job


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


@pytest.mark.parametrize("final", ["EXECUTION_COMPLETED", "EXECUTION_ERROR"])
def test_a_job_with_a_callback_becoming_final_enqueues_its_delivery(
    services, alice, receiver, final
):
    job = a_job(alice, "SUBMITTED", callback_url=receiver.url(), remote_job_id="remote")

    job = job_settle(job, to_status=final, reason=f"JobService reported {final}")

    assert job.webhook_status == WebhookStatus.PENDING
    # On the webhooks' own queue, which the jobs' workers never take.
    assert process_broker(WEBHOOKS).queue_size() == 1
    assert process_broker(JOBS).queue_size() == 0
    assert run_tasks() == [f"webhook-{job.id}"]
    assert Job.objects.get(pk=job.pk).webhook_status == WebhookStatus.DELIVERED
    [received] = receiver.received
    assert received.headers["X-FrontService-Delivery"] == str(job.webhook_delivery_id)


def test_a_job_with_a_callback_failing_to_store_enqueues_its_delivery(services, alice, receiver):
    job = a_job(alice, "CREATED", callback_url=receiver.url())

    assert job_transition(
        job.id, from_status="CREATED", to_status="STORED_ERROR", reason="upload failed"
    )

    assert run_tasks() == [f"webhook-{job.id}"]
    assert len(receiver.received) == 1


def test_a_change_to_a_status_that_is_not_final_enqueues_nothing(services, alice, receiver):
    job = a_job(alice, "CREATED", callback_url=receiver.url())

    assert job_transition(job.id, from_status="CREATED", to_status="STORED", reason="stored")

    assert Job.objects.get(pk=job.pk).webhook_status == ""
    assert [process_broker(queue).queue_size() for queue in QUEUES] == [0, 0]
    assert run_tasks() == []
    assert receiver.received == []
    Job.objects.filter(pk=job.pk).delete()  # made up: no worker will ever move it on


def test_a_final_change_of_a_job_without_a_callback_enqueues_nothing(services, alice):
    job = a_job(alice, "SUBMITTED", remote_job_id="remote")

    job = job_settle(job, to_status="EXECUTION_COMPLETED", reason="JobService reported SUCCEEDED")

    assert job.status == "EXECUTION_COMPLETED"
    assert job.webhook_status == ""
    assert [process_broker(queue).queue_size() for queue in QUEUES] == [0, 0]
    assert run_tasks() == []
