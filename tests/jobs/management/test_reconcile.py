"""`manage.py reconcile`: one pass of the worker tier's reconciler and the webhooks', reported.

The passes themselves are tested in tests/orchestration/test_reconcile.py and
tests/webhooks/test_reconcile.py.
"""

from django.core.management import call_command


def test_the_reconcile_command_reports_its_pass(capsys):
    call_command("reconcile", "--stuck-after", "3600")

    out = capsys.readouterr().out
    assert "requeued" in out
    assert "webhooks enqueued" in out.splitlines()[0]
