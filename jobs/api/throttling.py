"""Per-owner rate limits: fixed-window counters that every API process shares.

An owner (tenant_id, sub) has one counter per scope (`submit` for POST, `read` for status and
output) and per window of the scope's period. Each request adds one to its counter in a single
atomic step, and once the count passes the limit the request is refused: 429 `rate_limited`
with `Retry-After` = the seconds to the window's end.

Why not DRF's SimpleRateThrottle: it keeps a list of timestamps per client in the cache and
writes it back with get/set, so two processes serving one owner at once both read the same list
and one request goes uncounted; under a burst (which is what a limit is for) that is the common
case. An atomic counter cannot lose a request. The price of a fixed window is that a client can
spend its limit at the end of one window and again at the start of the next (twice the limit in
a short span), which is acceptable for a protection limit.

The counters live where gunicorn's workers and all replicas see them (a per-process LocMemCache
would give every process its own limit):
- in Redis when CACHE_URL (or REDIS_URL) is set, through Django's RedisCache: `add` then `incr`,
  both atomic in Redis;
- in MongoDB otherwise: one `find_one_and_update` with `$inc` and `upsert` per request on the
  `rate_limit_counters` collection, whose TTL index removes past windows (jobs migration 0004).
  django-mongodb-backend 5.2 ships no cache backend (its MongoDBCache was withdrawn because
  Django's cache pickles values), so this is a small counter store, not a Django cache.
"""

import hashlib
import logging
import math
import time
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import BaseThrottle

from frontservice import mongo

logger = logging.getLogger(__name__)

COLLECTION = "rate_limit_counters"
# A window's counter outlives the window by this much, so it cannot expire (and start again at
# 1) while requests of its own window still count on it.
GRACE_SECONDS = 60


class OwnerRateThrottle(BaseThrottle):
    """Counts the caller's requests in the scope the view names for its action.

    The view maps actions to scopes (`throttle_scopes = {"create": "submit", ...}`); an action
    without a scope, or a scope whose rate is off, is not limited.
    """

    def allow_request(self, request, view) -> bool:
        scope = getattr(view, "throttle_scopes", {}).get(getattr(view, "action", None))
        rate = _rates().get(scope)
        if rate is None or not getattr(request.user, "is_authenticated", False):
            return True
        limit, period = rate
        now = time.time()
        window = int(now // period)
        window_end = (window + 1) * period
        count = hit(_key(scope, request.user, window), expires_at=window_end + GRACE_SECONDS)
        if count <= limit:
            return True
        self._wait = max(1, math.ceil(window_end - now))
        return False

    def wait(self) -> int:
        return self._wait


def hit(key: str, *, expires_at: float) -> int:
    """Add one to the counter `key` (created at 1, gone after `expires_at`); return its value."""
    if settings.CACHE_URL:
        return _cache_hit(key, timeout=max(1, math.ceil(expires_at - time.time())))
    return _mongo_hit(key, expires_at=datetime.fromtimestamp(expires_at, tz=UTC))


def _rates() -> dict[str, tuple[int, int] | None]:
    return {"submit": settings.RATE_LIMIT_SUBMIT, "read": settings.RATE_LIMIT_READ}


def _key(scope: str, owner, window: int) -> str:
    # Hashed: any tenant or sub is a short, safe key, and no ids are spelled out in Redis.
    digest = hashlib.sha256(f"{owner.tenant_id}\0{owner.sub}".encode()).hexdigest()[:32]
    return f"ratelimit:{scope}:{digest}:{window}"


def _cache_hit(key: str, *, timeout: int) -> int:
    from redis.exceptions import RedisError

    cache = caches["default"]
    try:
        if cache.add(key, 1, timeout=timeout):
            return 1
        try:
            return cache.incr(key)
        except ValueError:
            # Evicted between add and incr (Redis under memory pressure): the window's first.
            cache.add(key, 1, timeout=timeout)
            return 1
    except RedisError:
        # Redis holds nothing but these counters: while it is down the API keeps serving,
        # unlimited, rather than failing every request.
        logger.warning("rate limit counter unavailable; request not limited", exc_info=True)
        return 0


def _mongo_hit(key: str, *, expires_at: datetime) -> int:
    return mongo.counter_increment(COLLECTION, key, expires_at=expires_at)
