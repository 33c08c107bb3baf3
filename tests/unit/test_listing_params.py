"""The listing's query string: defaults, the cursor's round trip, and what is refused."""

import uuid
from datetime import UTC, datetime

import pytest
from django.http import QueryDict

from jobs.api import errors, listing
from jobs.models import Job


def test_without_parameters_it_is_the_first_page_of_the_default_size(settings):
    query = listing.parse_list_query(QueryDict(""))

    assert query == listing.ListQuery(limit=settings.LIST_DEFAULT_LIMIT)


def test_the_limit_follows_the_settings(settings):
    settings.LIST_MAX_LIMIT = 5

    assert listing.parse_list_query(QueryDict("limit=5")).limit == 5
    with pytest.raises(errors.InvalidLimit):
        listing.parse_list_query(QueryDict("limit=6"))


def test_a_cursor_comes_back_as_the_position_it_was_made_from():
    job = Job(id=uuid.uuid4(), created_at=datetime(2026, 1, 5, 10, 0, 0, 123000, tzinfo=UTC))

    cursor = listing.encode_cursor(job)

    assert "=" not in cursor and "+" not in cursor and "/" not in cursor  # safe in a URL
    assert listing.decode_cursor(cursor) == (job.created_at, job.id)


def test_statuses_are_merged_without_repeats():
    query = listing.parse_list_query(QueryDict("status=CREATED,STORED&status=CREATED&status="))

    assert query.statuses == ("CREATED", "STORED")


def test_an_instant_without_offset_is_utc():
    query = listing.parse_list_query(QueryDict("created_after=2026-01-05T10:00:00"))

    assert query.created_after == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
