"""The transition table: the seed's diagram, and nothing else."""

import pytest

from jobs.services import IllegalTransition, job_transition
from jobs.states import ERROR, FINAL, REMOTE_STATUS, TRANSITIONS, Status, can_transition


def test_every_status_has_a_row():
    assert set(TRANSITIONS) == set(Status.values)


def test_the_forward_path_is_the_seeds():
    assert can_transition(Status.CREATED, Status.STORED)
    assert can_transition(Status.STORED, Status.SUBMITTED)
    assert can_transition(Status.SUBMITTED, Status.EXECUTION_COMPLETED)
    assert can_transition(Status.SUBMITTED, Status.EXECUTION_ERROR)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (Status.CREATED, Status.SUBMITTED),  # skipping STORED
        (Status.SUBMITTED, Status.STORED),  # backwards
        (Status.EXECUTION_COMPLETED, Status.SUBMITTED),
        (Status.EXECUTION_ERROR, Status.CREATED),
        (Status.CREATED, Status.EXECUTION_COMPLETED),
    ],
)
def test_skips_and_regressions_are_refused(old, new):
    assert not can_transition(old, new)
    with pytest.raises(IllegalTransition):
        job_transition(
            "00000000-0000-4000-8000-000000000000", from_status=old, to_status=new, reason="test"
        )


def test_only_operator_retries_leave_a_final_state():
    leaving = {old: TRANSITIONS[old] for old in FINAL if TRANSITIONS[old]}
    assert leaving == {
        Status.STORED_ERROR: {Status.CREATED},
        Status.SUBMITTED_ERROR: {Status.STORED},
    }


def test_a_job_not_submitted_is_cancelled_at_once_a_submitted_one_via_cancelling():
    assert can_transition(Status.CREATED, Status.CANCELLED)
    assert can_transition(Status.STORED, Status.CANCELLED)
    # STORED with its submit claimed by a worker: the PUT may be in flight.
    assert can_transition(Status.STORED, Status.CANCELLING)
    assert can_transition(Status.SUBMITTED, Status.CANCELLING)
    assert not can_transition(Status.CREATED, Status.CANCELLING)


def test_cancelling_ends_cancelled_or_in_the_state_jobservice_reached_first():
    assert TRANSITIONS[Status.CANCELLING] == {
        Status.CANCELLED,
        Status.EXECUTION_COMPLETED,
        Status.EXECUTION_ERROR,
    }


def test_cancelled_is_final_and_no_error():
    assert Status.CANCELLED in FINAL
    assert Status.CANCELLED not in ERROR
    assert Status.CANCELLING not in FINAL
    assert TRANSITIONS[Status.CANCELLED] == frozenset()


def test_no_final_job_can_be_cancelled():
    for status in FINAL:
        assert not can_transition(status, Status.CANCELLING), status
        assert not can_transition(status, Status.CANCELLED), status


def test_jobservices_cancelled_means_cancelled():
    assert REMOTE_STATUS["CANCELLED"] == Status.CANCELLED
