"""webhooks/signing.py: the signature a receiver checks, as docs/api.md's snippet checks it."""

import hashlib
import hmac

import pytest

from webhooks import signing

BODY = b'{"id":"5fae24ed-11a1-4c0d-a1d4-76da377c6978","status":"EXECUTION_COMPLETED"}'
SENT_AT = 1767607200
DELIVERY = "0b9d2d6e-6f2b-4d8e-9a59-2f8f5b3f6a10"
EVENT = "job.finished"


def _headers(tenant_id: str = "acme", **changes) -> dict[str, str]:
    headers = signing.signed_headers(
        tenant_id=tenant_id, delivery_id=DELIVERY, event=EVENT, timestamp=SENT_AT, body=BODY
    )
    return {**headers, **changes}


@pytest.fixture(autouse=True)
def acme_secret(settings):
    settings.WEBHOOK_TENANT_SECRETS = {"acme": ("s3cret",)}


def test_it_is_the_hex_hmac_sha256_of_timestamp_delivery_event_and_body():
    text = f"{SENT_AT}.{DELIVERY}.{EVENT}.".encode() + BODY
    expected = hmac.new(b"s3cret", text, hashlib.sha256).hexdigest()

    assert _headers() == {
        "X-FrontService-Event": EVENT,
        "X-FrontService-Delivery": DELIVERY,
        "X-FrontService-Timestamp": str(SENT_AT),
        "X-FrontService-Signature": f"v2={expected}",
    }


def test_it_verifies_with_the_secret_within_the_tolerance():
    assert signing.verify("s3cret", headers=_headers(), body=BODY, now=SENT_AT)
    assert signing.verify("s3cret", headers=_headers(), body=BODY, now=SENT_AT + 299)


def test_it_fails_with_another_secret():
    assert not signing.verify("other", headers=_headers(), body=BODY, now=SENT_AT)


def test_it_fails_when_the_body_or_the_timestamp_was_changed():
    assert not signing.verify("s3cret", headers=_headers(), body=BODY + b" ", now=SENT_AT)
    # A captured delivery replayed with a fresh timestamp: the signature covers the timestamp.
    replayed = _headers(**{"X-FrontService-Timestamp": str(SENT_AT + 100)})
    assert not signing.verify("s3cret", headers=replayed, body=BODY, now=SENT_AT + 100)


def test_it_fails_when_the_delivery_id_or_the_event_was_changed():
    # A captured delivery replayed at once under a new id, to get past the receiver's dedupe.
    new_id = _headers(**{"X-FrontService-Delivery": "9c1f7a52-0000-4000-8000-000000000000"})
    assert not signing.verify("s3cret", headers=new_id, body=BODY, now=SENT_AT)
    other_event = _headers(**{"X-FrontService-Event": "job.created"})
    assert not signing.verify("s3cret", headers=other_event, body=BODY, now=SENT_AT)


def test_it_fails_outside_the_tolerance_on_a_malformed_timestamp_and_without_a_header():
    assert not signing.verify("s3cret", headers=_headers(), body=BODY, now=SENT_AT + 301)
    malformed = _headers(**{"X-FrontService-Timestamp": "soon"})
    assert not signing.verify("s3cret", headers=malformed, body=BODY, now=SENT_AT)
    headers = _headers()
    del headers["X-FrontService-Delivery"]
    assert not signing.verify("s3cret", headers=headers, body=BODY, now=SENT_AT)


def test_while_a_secret_is_rotated_both_the_new_and_the_old_one_verify(settings):
    settings.WEBHOOK_TENANT_SECRETS = {"acme": ("new-secret", "old-secret")}

    headers = _headers()

    assert headers["X-FrontService-Signature"].count("v2=") == 2
    assert signing.verify("new-secret", headers=headers, body=BODY, now=SENT_AT)
    assert signing.verify("old-secret", headers=headers, body=BODY, now=SENT_AT)
    assert not signing.verify("another-secret", headers=headers, body=BODY, now=SENT_AT)


def test_in_development_a_tenant_without_its_own_secret_gets_the_shared_one(settings):
    settings.WEBHOOK_SECRET = "shared-dev-secret"

    assert signing.secrets_for("acme") == ("s3cret",)
    assert signing.secrets_for("globex") == ("shared-dev-secret",)


def test_in_production_a_tenant_without_its_own_secret_cannot_be_signed_for(settings):
    settings.PRODUCTION = True

    assert not signing.can_sign_for("globex")
    with pytest.raises(signing.NoSigningSecret) as refused:
        _headers(tenant_id="globex")
    assert refused.value.retryable is False
