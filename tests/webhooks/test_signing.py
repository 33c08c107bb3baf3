"""webhooks/signing.py: the signature a receiver checks, as the README's snippet checks it."""

import hashlib
import hmac

from webhooks import signing

BODY = b'{"id":"5fae24ed-11a1-4c0d-a1d4-76da377c6978","status":"EXECUTION_COMPLETED"}'
SENT_AT = 1767607200


def test_it_is_the_hex_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(b"s3cret", b"1767607200." + BODY, hashlib.sha256).hexdigest()

    assert signing.signature("s3cret", SENT_AT, BODY) == f"v1={expected}"


def test_it_verifies_with_the_secret_within_the_tolerance():
    header = signing.signature("s3cret", SENT_AT, BODY)

    assert signing.verify("s3cret", timestamp="1767607200", body=BODY, header=header, now=SENT_AT)
    assert signing.verify(
        "s3cret", timestamp="1767607200", body=BODY, header=header, now=SENT_AT + 299
    )


def test_it_fails_with_another_secret():
    header = signing.signature("s3cret", SENT_AT, BODY)

    assert not signing.verify(
        "other", timestamp="1767607200", body=BODY, header=header, now=SENT_AT
    )


def test_it_fails_when_the_body_or_the_timestamp_was_changed():
    header = signing.signature("s3cret", SENT_AT, BODY)

    assert not signing.verify(
        "s3cret", timestamp="1767607200", body=BODY + b" ", header=header, now=SENT_AT
    )
    # A captured delivery replayed with a fresh timestamp: the signature covers the timestamp.
    assert not signing.verify(
        "s3cret", timestamp="1767607300", body=BODY, header=header, now=SENT_AT + 100
    )


def test_it_fails_outside_the_tolerance_and_on_a_malformed_timestamp():
    header = signing.signature("s3cret", SENT_AT, BODY)

    assert not signing.verify(
        "s3cret", timestamp="1767607200", body=BODY, header=header, now=SENT_AT + 301
    )
    assert not signing.verify("s3cret", timestamp="soon", body=BODY, header=header, now=SENT_AT)


def test_a_tenant_with_its_own_secret_gets_it_and_others_the_global_one(settings):
    settings.WEBHOOK_SECRET = "global-secret"
    settings.WEBHOOK_TENANT_SECRETS = {"acme": "acme-secret"}

    assert signing.secret_for("acme") == "acme-secret"
    assert signing.secret_for("globex") == "global-secret"
