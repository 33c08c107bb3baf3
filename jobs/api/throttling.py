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

Leases. A round trip to the shared counter on every request was a large part of a status
request's own time, so a process that is busy with one owner counts ahead: it adds n to the
shared counter in one step and admits the next n requests of that owner and scope from memory.
- n starts at 1 and doubles each time a process spends its lease within the window, up to
  1/LEASE_SHARE of the limit (at most LEASE_MAX). A limit under LEASE_SHARE is counted one
  request at a time, exactly as without leases, and so is an owner who is not busy.
- The limit is never exceeded: a lease is granted only out of the counts left under the limit
  (a lease that would cross it is granted in part).
- The price is the other way round: what a process leased and its owner's requests did not
  spend (because they went to other processes, or stopped) is lost with the window. An owner
  served by P processes may be refused up to P x (n - 1) requests early, at most P/LEASE_SHARE
  of the limit, and only once they have been busy enough to grow their leases.
- Once the shared count reaches the limit, the process refuses the owner's requests in that
  scope until the window ends without asking again: the count only grows within a window. A
  client hammering past its limit therefore costs no round trips at all.
"""

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import caches
from django.core.signals import setting_changed
from django.dispatch import receiver
from rest_framework.throttling import BaseThrottle

from frontservice import mongo

logger = logging.getLogger(__name__)

COLLECTION = "rate_limit_counters"
# A window's counter outlives the window by this much, so it cannot expire (and start again at
# 1) while requests of its own window still count on it.
GRACE_SECONDS = 60
# A lease is at most this share of the limit, and at most LEASE_MAX requests.
LEASE_SHARE = 50
LEASE_MAX = 64


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
        if _leases.admit(_key(scope, request.user, window), limit=limit, ends=window_end):
            return True
        self._wait = max(1, math.ceil(window_end - now))
        return False

    def wait(self) -> int:
        return self._wait


@dataclass
class _Lease:
    remaining: int  # requests this process may still admit without asking
    size: int  # how many it asked for last time
    count: int  # the shared count after its last step: the limit is reached when it is
    ends: float  # the window's end


class _Leases:
    """This process's leases on the shared counters, by counter key (module docstring)."""

    # Past windows' leases are dropped once there are this many.
    PRUNE_AT = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, _Lease] = {}

    def admit(self, key: str, *, limit: int, ends: float) -> bool:
        with self._lock:
            lease = self._by_key.get(key)
            if lease is not None:
                if lease.remaining > 0:
                    lease.remaining -= 1
                    return True
                if lease.count >= limit:
                    return False
            size = self._next_size(lease, limit)
        # Outside the lock: other owners' requests in this process must not wait on it.
        count = hit(key, amount=size, expires_at=ends + GRACE_SECONDS)
        # The part of what was just added that still fell under the limit (all of it, unless
        # another process took the last counts first). This request takes one of them.
        granted = min(size, limit - (count - size))
        with self._lock:
            lease = self._by_key.get(key)
            if lease is None:
                if len(self._by_key) >= self.PRUNE_AT:
                    self._prune()
                lease = self._by_key[key] = _Lease(remaining=0, size=size, count=count, ends=ends)
            # Two threads may have asked at once; each one's grant adds to the lease.
            lease.remaining += max(0, granted - 1)
            lease.size = max(lease.size, size)
            lease.count = max(lease.count, count)
        return granted > 0

    @staticmethod
    def _next_size(lease: _Lease | None, limit: int) -> int:
        if lease is None:
            return 1
        ceiling = max(1, min(LEASE_MAX, limit // LEASE_SHARE, limit - lease.count))
        return min(lease.size * 2, ceiling)

    def _prune(self) -> None:
        now = time.time()
        self._by_key = {key: lease for key, lease in self._by_key.items() if lease.ends > now}

    def clear(self) -> None:
        with self._lock:
            self._by_key.clear()


_leases = _Leases()


@receiver(setting_changed)
def _forget_leases(*, setting: str, **kwargs) -> None:
    # A lease taken under one limit says nothing under another (tests change the rates).
    if setting.startswith("RATE_LIMIT_") or setting == "CACHE_URL":
        _leases.clear()


def hit(key: str, *, amount: int = 1, expires_at: float) -> int:
    """Add `amount` to the counter `key` (created at `amount`, gone after `expires_at`);
    return its value."""
    if settings.CACHE_URL:
        return _cache_hit(key, amount=amount, timeout=max(1, math.ceil(expires_at - time.time())))
    return _mongo_hit(key, amount=amount, expires_at=datetime.fromtimestamp(expires_at, tz=UTC))


def _rates() -> dict[str, tuple[int, int] | None]:
    return {"submit": settings.RATE_LIMIT_SUBMIT, "read": settings.RATE_LIMIT_READ}


def _key(scope: str, owner, window: int) -> str:
    # Hashed: any tenant or sub is a short, safe key, and no ids are spelled out in Redis.
    digest = hashlib.sha256(f"{owner.tenant_id}\0{owner.sub}".encode()).hexdigest()[:32]
    return f"ratelimit:{scope}:{digest}:{window}"


def _cache_hit(key: str, *, amount: int, timeout: int) -> int:
    from redis.exceptions import RedisError

    cache = caches["default"]
    try:
        if cache.add(key, amount, timeout=timeout):
            return amount
        try:
            return cache.incr(key, amount)
        except ValueError:
            # Evicted between add and incr (Redis under memory pressure): the window's first.
            cache.add(key, amount, timeout=timeout)
            return amount
    except RedisError:
        # Redis holds nothing but these counters: while it is down the API keeps serving,
        # unlimited, rather than failing every request.
        logger.warning("rate limit counter unavailable; request not limited", exc_info=True)
        return 0


def _mongo_hit(key: str, *, amount: int, expires_at: datetime) -> int:
    return mongo.counter_increment(COLLECTION, key, amount=amount, expires_at=expires_at)
