"""Fixtures of the jobs app's tests: jobs made straight in a state, and admin permissions."""

import uuid

import pytest

from jobs.models import Job
from jobs.states import Status
from tests.support.admin import JOIN_FREE_BACKEND


@pytest.fixture
def granted_permissions_work(settings):
    """Permissions granted to a staff user count (the backend that needs no joins)."""
    settings.AUTHENTICATION_BACKENDS = [JOIN_FREE_BACKEND]


@pytest.fixture
def make_job():
    """Jobs put in any state with the ORM, each with an owner of its own; deleted afterwards."""
    made = []

    def make(**fields) -> Job:
        hex_ = uuid.uuid4().hex[:10]
        fields = {
            "tenant_id": f"tenant-{hex_}",
            "sub": f"sub-{hex_}",
            "status": Status.EXECUTION_COMPLETED,
            **fields,
        }
        job = Job.objects.create(**fields)
        made.append(job.pk)
        return job

    yield make
    Job.objects.filter(pk__in=made).delete()
