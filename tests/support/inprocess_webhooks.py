"""In-process webhook tests: jobs submitted with a callback through DRF's test client, and
their webhooks delivered by running the queued tasks here (tests.support.inprocess.run_tasks)
to a real receiver on loopback (tests.support.webhooks.Receiver)."""

from urllib.parse import urlencode

from jobs.models import Job
from tests.support.api import Owner
from tests.support.inprocess import Api, run_until_settled, wait_for_status
from tests.support.webhooks import wait_for_webhook
from webhooks.models import WebhookDelivery

FINISHED = {"EXECUTION_COMPLETED", "EXECUTION_ERROR", "STORED_ERROR", "SUBMITTED_ERROR"}


def job_path(callback_url: str | None = None) -> str:
    if callback_url is None:
        return "/api/v1/job"
    return f"/api/v1/job?{urlencode({'callback_url': callback_url})}"


def post_job(
    api: Api,
    owner: Owner,
    data: bytes = b"hello webhooks",
    *,
    callback_url: str | None = None,
    headers: dict | None = None,
):
    return api.post(
        job_path(callback_url), owner, data=data, content_type="text/plain", headers=headers
    )


def submit_with_callback(api: Api, owner: Owner, url: str, data: bytes = b"hello webhooks") -> dict:
    response = post_job(api, owner, data, callback_url=url)
    assert response.status_code == 202, response.content
    return response.json()


def finish_and_deliver(api: Api, owner: Owner, job_id: str) -> tuple[dict, Job]:
    """Run the job to a final status, then its webhook's delivery; the final document and the
    job as stored once the webhook is delivered or given up."""
    final = wait_for_status(api, owner, job_id, FINISHED)
    # The delivery, enqueued when the job became final, and its next attempts as they come due.
    run_until_settled(job_id)
    return final, wait_for_webhook(job_id, timeout=0)


def attempts_of(job: Job) -> list[dict]:
    return WebhookDelivery.objects.get(pk=job.webhook_delivery_id).attempts


def assert_problem(response, status_code: int, code: str) -> None:
    assert response.status_code == status_code, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code
