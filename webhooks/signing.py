"""Signing webhook deliveries: HMAC-SHA256 over the timestamp, the delivery id, the event and
the body, with the tenant's own secret, sent in headers.

    X-FrontService-Event: job.finished
    X-FrontService-Delivery: 0b9d2d6e-...
    X-FrontService-Timestamp: 1767607200
    X-FrontService-Signature: v2=<hex HMAC-SHA256(secret,
                                   b"1767607200.0b9d2d6e-....job.finished." + body)>

Everything a receiver acts on is inside the signed text: the timestamp (so a receiver that
refuses old timestamps cannot be sent a captured delivery again later), the delivery id (so a
captured delivery replayed with a new id, to slip past the receiver's dedupe, does not verify)
and the event. `v2=` names the scheme. The older `v1=` (timestamp and body only) is no longer
sent: a receiver still checking it would accept exactly those replays, so it must move to v2,
and a v1 signature beside the v2 one would keep that hole open for it.

Each tenant has its own secret (WEBHOOK_TENANT_SECRETS), so whoever can verify one tenant's
deliveries cannot forge another's. While a secret is rotated the tenant has two, and every
delivery carries one signature per secret (`v2=<with new>,v2=<with old>`): a receiver holding
either verifies, and moves to the new one at its own pace.
"""

import hashlib
import hmac
import time
from collections.abc import Mapping

from django.conf import settings

from frontservice.downstream import DownstreamError

SCHEME = "v2"
# How far a receiver should let a timestamp be from its own clock (docs/api.md's snippet too).
DEFAULT_TOLERANCE_SECONDS = 300


class NoSigningSecret(DownstreamError):
    """The tenant has no webhook secret: nothing may be sent unsigned, and retrying cannot help."""

    def __init__(self, tenant_id: str = ""):
        super().__init__("webhook", f"no signing secret for tenant {tenant_id!r}", retryable=False)


def secrets_for(tenant_id: str) -> tuple[str, ...]:
    """The tenant's secrets (two while one is rotated); in development, else WEBHOOK_SECRET.

    Empty in production for a tenant without its own: there is no shared fallback there.
    """
    own = settings.WEBHOOK_TENANT_SECRETS.get(tenant_id)
    if own:
        return tuple(own)
    return () if settings.PRODUCTION else (settings.WEBHOOK_SECRET,)


def can_sign_for(tenant_id: str) -> bool:
    """Whether deliveries of this tenant can be signed (a callback_url is accepted then)."""
    return bool(secrets_for(tenant_id))


def signed_text(*, timestamp: int, delivery_id: str, event: str, body: bytes) -> bytes:
    return f"{timestamp}.{delivery_id}.{event}.".encode() + body


def signature(secret: str, *, timestamp: int, delivery_id: str, event: str, body: bytes) -> str:
    """One `v2=<hex>` signature of this delivery with this secret."""
    text = signed_text(timestamp=timestamp, delivery_id=delivery_id, event=event, body=body)
    return f"{SCHEME}={hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()}"


def signed_headers(
    *, tenant_id: str, delivery_id: str, event: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The X-FrontService-* headers of one attempt; NoSigningSecret without a secret."""
    secrets = secrets_for(tenant_id)
    if not secrets:
        raise NoSigningSecret(tenant_id)
    fields = {"timestamp": timestamp, "delivery_id": delivery_id, "event": event, "body": body}
    return {
        "X-FrontService-Event": event,
        "X-FrontService-Delivery": delivery_id,
        "X-FrontService-Timestamp": str(timestamp),
        "X-FrontService-Signature": ",".join(signature(secret, **fields) for secret in secrets),
    }


def verify(
    secret: str,
    *,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """What a receiver does: a fresh timestamp and a v2 signature that matches, in constant time."""
    try:
        timestamp = headers["X-FrontService-Timestamp"]
        delivery_id = headers["X-FrontService-Delivery"]
        event = headers["X-FrontService-Event"]
        offered = headers["X-FrontService-Signature"].split(",")
    except KeyError:
        return False
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    expected = signature(
        secret, timestamp=int(timestamp), delivery_id=delivery_id, event=event, body=body
    )
    # Every offered signature is compared, so the time taken does not say which one matched.
    return sum(hmac.compare_digest(expected, value.strip()) for value in offered) > 0
