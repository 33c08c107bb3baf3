"""The cap on an owner's jobs not yet final, checked before a byte of the body is read."""

from django.conf import settings
from django.utils import timezone

from jobs.api import errors
from jobs.api.tokens import Principal
from jobs.models import IdempotencyKey
from jobs.queries import jobs_active_count

# What a client at the cap is told to wait: jobs take seconds to minutes, so some room is
# likely by then, without the client polling hard.
RETRY_AFTER_SECONDS = 30


def check_active_jobs(*, owner: Principal, idempotency_key: str | None) -> None:
    """Raise TooManyActiveJobs when the owner already has MAX_ACTIVE_JOBS_PER_OWNER jobs not final.

    The count is not atomic with the insert that follows it: requests of one owner racing at the
    cap all count the same jobs, so the owner can overshoot the cap by the number of its
    requests in flight at that moment. A cap that can never be overshot would need a per-owner
    counter kept in step with every status change; for a protection limit, a bounded overshoot
    is the better trade.
    """
    cap = settings.MAX_ACTIVE_JOBS_PER_OWNER
    if not cap:
        return
    # Counting stops at the cap.
    if jobs_active_count(tenant_id=owner.tenant_id, sub=owner.sub, limit=cap) < cap:
        return
    if idempotency_key and _is_repeat(owner, idempotency_key):
        # A repeat of a request that already claimed its key is answered from the key (replay,
        # 409 or 422) and never makes a job, so the cap must not hide its first answer.
        return
    raise errors.TooManyActiveJobs(
        f"You have {cap} jobs that are not final yet, the most allowed; "
        "submit again when some have finished.",
        wait=RETRY_AFTER_SECONDS,
    )


def _is_repeat(owner: Principal, key: str) -> bool:
    return IdempotencyKey.objects.filter(
        tenant_id=owner.tenant_id, sub=owner.sub, key=key, expires_at__gt=timezone.now()
    ).exists()
