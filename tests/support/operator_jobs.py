"""Jobs put straight into a status with the ORM, for the operator tools' tests (retry_jobs,
job_resend, reconcile): optionally with a real staged input and an age."""

from datetime import timedelta

from django.utils import timezone

from jobs import staging
from jobs.models import Job
from tests.support.api import Owner


class JobMaker:
    """Makes jobs, and cleans up after them: no job is left in flight for a later reconciler
    pass to pick up, and no staged input is left behind."""

    def __init__(self) -> None:
        self.made: list = []

    def __call__(
        self, owner: Owner, status: str, *, data: bytes | None = None, age=timedelta(0), **fields
    ) -> Job:
        job = Job(tenant_id=owner.tenant_id, sub=owner.sub, status=status, **fields)
        if data is not None:
            temp = staging.new_temp_path()
            temp.write_bytes(data)
            # Staged before the job exists, as the API does: a worker never misses the input.
            staging.promote(temp, job.id)
            job.input_size = len(data)
        job.save(force_insert=True)
        if age:
            # QuerySet.update() leaves auto_now alone, so the job looks untouched for `age`.
            Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - age)
            job.refresh_from_db()
        self.made.append(job.id)
        return job

    def clean_up(self) -> None:
        in_flight = ["CREATED", "STORED", "SUBMITTED", "CANCELLING"]
        Job.objects.filter(pk__in=self.made, status__in=in_flight).delete()
        for job_id in self.made:
            staging.discard(job_id)
