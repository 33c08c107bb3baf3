"""frontservice/mongo.py's insert: the document the ORM's own insert would store."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from django.db import IntegrityError
from django.utils import timezone

from frontservice import mongo
from jobs.models import IdempotencyKey, Job, WebhookStatus


def _job(owner_sub: str) -> Job:
    # Every kind of field set to a value its conversion changes (UUIDs, times, JSON, choices).
    return Job(
        tenant_id="mongo-insert",
        sub=owner_sub,
        status="EXECUTION_COMPLETED",  # final: nothing in the test stack acts on it
        content_type="text/plain",
        input_size=16,
        error={"service": "jobservice", "message": "no", "status_code": 500},
        history=[{"at": "2026-01-01T00:00:00+00:00", "from": None, "to": "CREATED"}],
        next_attempt_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        webhook_status=WebhookStatus.PENDING,
        webhook_delivery_id=uuid.uuid4(),
        callback_url="https://example.com/hook",
        request_id="req-1",
    )


def _stored(job: Job) -> dict:
    return mongo.collection(Job).find_one({"_id": mongo.to_db(Job, "pk", job.pk)})


@pytest.fixture
def owner_sub():
    sub = f"sub-{uuid.uuid4().hex[:10]}"
    yield sub
    Job.objects.filter(tenant_id="mongo-insert", sub=sub).delete()
    IdempotencyKey.objects.filter(tenant_id="mongo-insert", sub=sub).delete()


def test_an_inserted_job_is_stored_as_the_orm_stores_it(owner_sub):
    by_orm, by_insert = _job(owner_sub), _job(owner_sub)
    by_insert.webhook_delivery_id = by_orm.webhook_delivery_id

    by_orm.save(force_insert=True)
    mongo.insert(by_insert)

    orm_document, inserted = _stored(by_orm), _stored(by_insert)
    # The same fields, in the same order, with values of the same types; equal but for the
    # id and the times the insert itself stamps (auto_now_add, auto_now).
    assert list(inserted) == list(orm_document)
    assert {k: type(v) for k, v in inserted.items()} == {
        k: type(v) for k, v in orm_document.items()
    }
    stamped = ("_id", "created_at", "updated_at")
    assert {k: v for k, v in inserted.items() if k not in stamped} == {
        k: v for k, v in orm_document.items() if k not in stamped
    }
    # The instance is the saved one: its times are the stored ones, and it is no longer new.
    assert inserted["created_at"] == by_insert.created_at.replace(
        microsecond=by_insert.created_at.microsecond // 1000 * 1000, tzinfo=None
    )
    assert not by_insert._state.adding


def test_a_second_insert_of_the_same_job_is_an_integrity_error(owner_sub):
    job = _job(owner_sub)
    mongo.insert(job)

    with pytest.raises(IntegrityError):
        mongo.insert(job)


def test_a_record_without_its_auto_primary_key_gets_the_one_the_database_gives(owner_sub):
    record = IdempotencyKey(
        tenant_id="mongo-insert",
        sub=owner_sub,
        key="k1",
        request_hash="0" * 64,
        expires_at=timezone.now() + timedelta(minutes=1),
    )

    mongo.insert(record)

    assert isinstance(record.pk, ObjectId)
    stored = IdempotencyKey.objects.get(pk=record.pk)
    assert (stored.sub, stored.key, stored.response_status) == (owner_sub, "k1", None)
