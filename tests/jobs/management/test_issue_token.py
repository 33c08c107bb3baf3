"""manage.py issue_token: a token for a tenant and a user, which the API's verification accepts."""

import time

import jwt
import pytest
from django.core.management import CommandError, call_command

from jobs.api.tokens import InvalidToken, Principal, verify_token


def test_issue_token_prints_a_token_that_verifies(capsys):
    call_command("issue_token", "--tenant", "acme", "--sub", "alice", "--lifetime", "120")

    token = capsys.readouterr().out.strip()
    assert verify_token(token) == Principal(tenant_id="acme", sub="alice")
    assert jwt.decode(token, options={"verify_signature": False})["exp"] <= time.time() + 121


def test_issue_token_honours_the_audience_option(capsys):
    call_command("issue_token", "--tenant", "acme", "--sub", "alice", "--audience", "other")

    with pytest.raises(InvalidToken):
        verify_token(capsys.readouterr().out.strip())


def test_issue_token_needs_a_private_key_for_rs256(settings):
    settings.JWT_ALGORITHM = "RS256"

    with pytest.raises(CommandError, match="private-key-file"):
        call_command("issue_token", "--tenant", "acme", "--sub", "alice")
