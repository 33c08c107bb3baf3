"""What the operator commands share (jobs/management/operator_options.py): every command reads a
duration and a job id the same way."""

import argparse
import re
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError

from jobs.management.operator_options import duration
from tests.support.operator import run_command


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("7d", 604800), ("90", 90), ("0", 0), ("0.5", 0.5)],
)
def test_a_duration_is_a_number_and_a_unit_or_plain_seconds(text, seconds):
    assert duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["5x", "h", "-1h", "1h30m", ""])
def test_anything_else_is_not_a_duration(text):
    with pytest.raises(argparse.ArgumentTypeError, match="is not a duration"):
        duration(text)


@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("retry_jobs", "--older-than"),
        ("retry_webhooks", "--older-than"),
        ("reconcile", "--stuck-after"),
        ("reconcile", "--refresh-after"),
        ("reconcile", "--webhook-after"),
        ("jobs_summary", "--stuck-after"),
        ("jobs_summary", "--refresh-after"),
    ],
)
def test_every_command_reads_durations_the_same_way(command, option):
    with pytest.raises(CommandError, match=re.escape("'5x' is not a duration")):
        run_command(command, option, "5x")


@pytest.mark.parametrize("command", ["retry_jobs", "retry_webhooks"])
def test_every_command_takes_job_ids_as_arguments(command):
    with pytest.raises(CommandError, match=re.escape("'nope' is not a job id")):
        run_command(command, str(uuid.uuid4()), "nope")


def test_the_summary_reads_hours_like_the_others(services):
    text = run_command("jobs_summary", "--stuck-after", "2h", "--refresh-after", "15m")

    assert "CREATED/STORED unchanged for 2h or more" in text
    assert "SUBMITTED unchanged for 15m or more" in text


def test_a_reconcile_pass_takes_hours_and_days(services):
    # Ages no job of the shared database has: the pass finds nothing to do, and says so.
    output = run_command(
        "reconcile", "--stuck-after", "36500d", "--refresh-after", "36500d", "--webhook-after", "2h"
    )

    assert output.startswith("0 requeued, 0 refreshed, 0 cancels retried")
