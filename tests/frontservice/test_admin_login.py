"""frontservice/admin_login.py and the django-axes settings: failed admin logins are counted per
user name and per client address, and past the limit either one is refused, even with the right
password, with a problem document."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from frontservice.admin_login import client_address

PASSWORD = "the-right-password-123"


@pytest.fixture
def admin_user(db):
    name = f"root-{uuid.uuid4().hex[:8]}"
    return get_user_model().objects.create_superuser(name, f"{name}@example.com", PASSWORD)


def _login(username: str, password: str, *, address: str = "10.0.0.1", **meta):
    return Client().post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
        **meta,
    )


def _assert_locked_out(response) -> None:
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "too_many_login_failures"
    assert int(response["Retry-After"]) > 0


def test_a_user_is_locked_out_after_the_failure_limit_even_with_the_right_password(
    admin_user, settings
):
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(admin_user.username, f"wrong-{attempt}").status_code == 200  # the form

    _assert_locked_out(_login(admin_user.username, "wrong-last"))
    # From another address too: the user name alone is counted.
    _assert_locked_out(_login(admin_user.username, PASSWORD, address="10.9.9.9"))


def test_an_address_is_locked_out_whatever_user_names_it_tries(admin_user, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        _login(f"guess-{attempt}-{uuid.uuid4().hex[:6]}", "wrong", address="10.0.0.66")

    _assert_locked_out(_login(admin_user.username, PASSWORD, address="10.0.0.66"))
    # The real admin from elsewhere still logs in: a redirect to the admin.
    assert _login(admin_user.username, PASSWORD, address="10.0.0.2").status_code == 302


def test_a_success_before_the_limit_starts_the_count_again(admin_user, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(admin_user.username, f"wrong-{attempt}", address="10.0.0.3")
    assert _login(admin_user.username, PASSWORD, address="10.0.0.3").status_code == 302

    assert _login(admin_user.username, "wrong-again", address="10.0.0.3").status_code == 200


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.1"),  # no proxy: the header is the client's, ignored
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "1.2.3.4, 203.0.113.9", "203.0.113.9"),  # the client's own entry is not trusted
        (2, "1.2.3.4, 203.0.113.9, 10.1.1.1", "203.0.113.9"),
        (1, "", "10.0.0.1"),
    ],
)
def test_the_client_address_is_the_one_the_outermost_trusted_proxy_saw(
    rf, settings, hops, forwarded, expected
):
    settings.ADMIN_LOGIN_PROXY_COUNT = hops
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)

    assert client_address(request) == expected
