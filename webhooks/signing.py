"""Signing webhook deliveries: HMAC-SHA256 over "<timestamp>.<body>", sent in headers.

    X-FrontService-Timestamp: 1767607200
    X-FrontService-Signature: v1=<hex HMAC-SHA256(secret, b"1767607200." + body)>

The timestamp is inside the signed text, so a receiver that refuses old timestamps (see
`verify`) cannot be sent a captured delivery again later. `v1=` names the scheme, so a second
one can be added beside it without breaking receivers.
"""

import hashlib
import hmac
import time

from django.conf import settings

SCHEME = "v1"
# How far a receiver should let a timestamp be from its own clock (docs/api.md's snippet too).
DEFAULT_TOLERANCE_SECONDS = 300


def secret_for(tenant_id: str) -> str:
    """The tenant's own secret (WEBHOOK_TENANT_SECRETS), or the global WEBHOOK_SECRET."""
    return settings.WEBHOOK_TENANT_SECRETS.get(tenant_id) or settings.WEBHOOK_SECRET


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-FrontService-Signature value for this body sent at this timestamp."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={digest.hexdigest()}"


def verify(
    secret: str,
    *,
    timestamp: str,
    body: bytes,
    header: str,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """What a receiver does: a fresh timestamp and a signature that matches, in constant time."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, sent_at, body), header)
