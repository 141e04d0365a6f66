"""Rate limits per client tier: GCRA in one Lua script on the region's Redis.

Why our own and not django-ratelimit: django-ratelimit counts fixed windows
with cache ``incr`` (bursts of twice the limit at window edges, clocks of each
web process), has no tiers, no fail-open/closed per tier and no standard
headers. GCRA ("generic cell rate algorithm", as in redis-cell and
``throttled``) keeps one timestamp per client, updates it atomically in one
script and takes the time from Redis (``TIME``), so every web process agrees.

A tier is ``limit`` requests per ``period`` seconds: a client may burst
``limit`` requests at once, then gets one more every ``period / limit``
seconds. Responses carry the IETF httpapi headers (draft-ietf-httpapi-ratelimit-headers):

    RateLimit-Policy: "standard";q=1200;w=60
    RateLimit: "standard";r=1187;t=1

and a refused request gets ``429`` (problem ``rate_limited``) with ``Retry-After``.
When Redis cannot be reached, tiers in ``RATE_LIMIT_FAIL_OPEN_TIERS`` are
served without a limit and the others get ``503 rate_limiter_unavailable``;
both outcomes are logged and counted (``saas_rate_limit_backend_errors_total``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from regions.errors import RateLimited
from regions.metrics import RATE_LIMIT_BACKEND_ERROR, RATE_LIMIT_REJECTED, labels
from regions.problems import app_error_response
from regions.redis import region_redis
from regions.routing.decisions import user_floor_prefetched
from regions.routing.tokens import user_key as routing_user_key
from saas.errors import RateLimiterUnavailable
from saas.tokens import bearer_token

logger = logging.getLogger(__name__)

KEY_PREFIX = "rl:"

# KEYS[1] bucket; ARGV[1] emission interval (microseconds); ARGV[2] burst (requests); ARGV[3] cost.
# KEYS[2], optional: a key to read in the same round trip (the caller's per-user causal token).
# Returns {allowed, remaining, retry_after_us, reset_after_us, value of KEYS[2] or nil}.
_GCRA = """
local peeked = false
if KEYS[2] then
  peeked = redis.call('GET', KEYS[2])
end
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then
  tat = now
end
local new_tat = tat + interval * cost
local allow_at = new_tat - tolerance
if now < allow_at then
  return {0, 0, math.floor(allow_at - now), math.floor(tat - now), peeked}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((tolerance - (new_tat - now)) / interval), 0, math.floor(new_tat - now), peeked}
"""


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    limit: int
    """Requests a client may make at once (the quota)."""
    period: float
    """Seconds in which a spent quota is fully restored."""
    fail_open: bool
    """Serve without a limit (True) or refuse (False) when Redis is down."""

    @property
    def interval_us(self) -> int:
        return max(1, int(self.period * 1_000_000 / self.limit))

    def policy_header(self) -> str:
        return f'"{self.name}";q={self.limit};w={math.ceil(self.period)}'


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: float
    """Seconds until the next request would be allowed (0 when allowed)."""
    reset_after: float
    """Seconds until the whole quota is available again."""
    peeked: bytes | None = None
    """The value of the ``peek`` key, read in the same round trip (``None`` if unset or not asked)."""


def parse_tier(name: str, spec: str, *, fail_open: bool) -> Tier:
    """``"120/60"`` is 120 requests per 60 seconds. Raises ``ValueError`` when malformed."""
    limit_text, _, period_text = spec.partition("/")
    limit, period = int(limit_text), float(period_text or "nan")
    if limit < 1 or not period > 0:
        raise ValueError(f"rate limit {name}={spec!r}: use <requests>/<seconds>, both positive")
    return Tier(name=name, limit=limit, period=period, fail_open=fail_open)


@functools.cache
def _tiers(specs: tuple[tuple[str, str], ...], fail_open: frozenset[str]) -> dict[str, Tier]:
    return {name: parse_tier(name, spec, fail_open=name in fail_open) for name, spec in specs}


def tiers() -> dict[str, Tier]:
    """The configured tiers (``RATE_LIMIT_TIERS``), parsed once per configuration."""
    specs: Mapping[str, str] = settings.RATE_LIMIT_TIERS
    return _tiers(tuple(sorted(specs.items())), frozenset(settings.RATE_LIMIT_FAIL_OPEN_TIERS))


def tier(name: str) -> Tier:
    return tiers()[name]


@functools.cache
def _trusted_networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def client_ip(request: HttpRequest) -> str:
    """The client's address, believing ``X-Forwarded-For`` only as far as trusted proxies go.

    Walk from the TCP peer (``REMOTE_ADDR``) to the left of ``X-Forwarded-For``
    while the current hop is a trusted proxy (``RATE_LIMIT_TRUSTED_PROXIES``,
    CIDRs). The first untrusted hop is the client; a header written by the
    client itself is never believed, because its entries are left of the
    first untrusted hop.
    """
    networks = _trusted_networks(tuple(settings.RATE_LIMIT_TRUSTED_PROXIES))
    address = str(request.META.get("REMOTE_ADDR") or "")
    hops = [hop.strip() for hop in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    hops = [hop for hop in hops if hop]
    while hops and _is_ip(address) and any(ipaddress.ip_address(address) in net for net in networks):
        candidate = hops.pop()
        if not _is_ip(candidate):
            break  # a garbled hop: the last trusted proxy is all we know
        address = candidate
    return address


def client_ip_digest(request: HttpRequest) -> str:
    """A keyed hash of the client IP: a stable bucket id that is not personal data in clear."""
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, client_ip(request).encode(), hashlib.sha256).hexdigest()[:32]


@functools.lru_cache(maxsize=4)
def _script(client: redis.Redis) -> Any:
    return client.register_script(_GCRA)


class _ProcessBuckets:
    """The same GCRA in process memory, for the embedded mode with no Redis configured.

    Limits then hold per process, not per region; deployments always set REDIS_URL.
    """

    def __init__(self) -> None:
        self._tat: dict[str, int] = {}
        self._lock = threading.Lock()

    def spend(self, *, key: str, interval: int, burst: int, cost: int) -> tuple[int, int, int, int]:
        now = time.time_ns() // 1000
        tolerance = interval * burst
        with self._lock:
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + interval * cost
            allow_at = new_tat - tolerance
            if now < allow_at:
                return 0, 0, allow_at - now, tat - now
            self._tat[key] = new_tat
            if len(self._tat) > 100_000:  # forget expired buckets
                self._tat = {k: v for k, v in self._tat.items() if v > now}
        return 1, (tolerance - (new_tat - now)) // interval, 0, new_tat - now

    def forget(self, key: str) -> None:
        with self._lock:
            self._tat.pop(key, None)


_process_buckets = _ProcessBuckets()


def rate_limit_check(*, tier: Tier, key: str, cost: int = 1, peek: str | None = None) -> Decision:
    """Spend ``cost`` from ``key``'s bucket in ``tier``. Raises ``redis.RedisError`` when Redis fails.

    ``peek`` names another key of the region's Redis to read in the same round
    trip (``Decision.peeked``). Without ``REDIS_URL`` (the embedded mode) the
    buckets live in process memory and nothing is peeked.
    """
    bucket = f"{KEY_PREFIX}{tier.name}:{key}"
    client = region_redis()
    peeked = None
    if client is None:
        allowed, remaining, retry_us, reset_us = _process_buckets.spend(
            key=bucket, interval=tier.interval_us, burst=tier.limit, cost=cost
        )
    else:
        allowed, remaining, retry_us, reset_us, *rest = _script(client)(
            keys=[bucket] if peek is None else [bucket, peek], args=[tier.interval_us, tier.limit, cost]
        )
        peeked = rest[0] if rest else None
    return Decision(
        allowed=bool(allowed),
        remaining=int(remaining),
        retry_after=int(retry_us) / 1_000_000,
        reset_after=int(reset_us) / 1_000_000,
        peeked=peeked,
    )


def rate_limit_reset(*, tier: Tier, key: str) -> None:
    client = region_redis()
    if client is not None:
        client.delete(f"{KEY_PREFIX}{tier.name}:{key}")
    else:
        _process_buckets.forget(f"{KEY_PREFIX}{tier.name}:{key}")


def decision_headers(tier: Tier, decision: Decision) -> dict[str, str]:
    headers = {
        "RateLimit-Policy": tier.policy_header(),
        "RateLimit": f'"{tier.name}";r={decision.remaining};t={math.ceil(decision.reset_after)}',
    }
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after)))
    return headers


def backend_error(tier: Tier, exc: Exception, *, what: str) -> None:
    """Log and count a Redis failure of the limiter (no client data in the log)."""
    policy = "open" if tier.fail_open else "closed"
    labels(RATE_LIMIT_BACKEND_ERROR, policy=policy).inc()
    logger.warning(
        "rate limiter cannot reach Redis for %s (tier %s): failing %s (%s)",
        what,
        tier.name,
        policy,
        type(exc).__name__,
    )


# --- Middleware ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Client:
    tier: Tier
    key: str
    user_id: str | None = None
    """The authenticated user, when the token or the session names one."""


def identify(request: HttpRequest) -> Client:
    """Who is calling, for rate limits: the API token, else the session user, else the IP.

    A presented token is resolved once here and kept on the request
    (``request.api_token``) for the API's authentication class.
    """
    from saas.selectors import api_token_resolve

    raw = bearer_token(request.META.get("HTTP_AUTHORIZATION"))
    if raw is not None:
        token = api_token_resolve(raw=raw)
        request.api_token = token  # type: ignore[attr-defined]
        if token is not None:
            return Client(tier=tier(token.tier), key=f"token:{token.pk}", user_id=str(token.user_id))
    session = getattr(request, "session", None)
    user_id = session.get(SESSION_KEY) if session is not None else None
    if user_id:
        return Client(
            tier=tier(settings.RATE_LIMIT_SESSION_TIER), key=f"user:{user_id}", user_id=str(user_id)
        )
    return Client(tier=tier("anonymous"), key=f"ip:{client_ip_digest(request)}")


class RateLimitMiddleware:
    """Slot 6 of the middleware order (docs/decisions/0003): after residency, before auth."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        prefixes: Sequence[str] = settings.RATE_LIMIT_PATH_PREFIXES
        if not request.path.startswith(tuple(prefixes)):
            return self.get_response(request)
        client = identify(request)
        # The user's per-user causal token comes back in the same round trip (the router needs it
        # before the view's first read); if this fails, the router asks Redis itself as before.
        peek = routing_user_key(client.user_id) if client.user_id is not None else None
        try:
            decision = rate_limit_check(tier=client.tier, key=client.key, peek=peek)
        except redis.RedisError as exc:
            backend_error(client.tier, exc, what="an API request")
            if not client.tier.fail_open:
                return app_error_response(
                    RateLimiterUnavailable(
                        "Rate limits cannot be checked right now; retry shortly.",
                        headers={"Retry-After": str(settings.RATE_LIMIT_UNAVAILABLE_RETRY_AFTER)},
                    ),
                    instance=request.path,
                )
            response = self.get_response(request)
            response["RateLimit-Policy"] = client.tier.policy_header()
            return response
        if peek is not None and client.user_id is not None:
            user_floor_prefetched(client.user_id, decision.peeked)
        headers = decision_headers(client.tier, decision)
        if not decision.allowed:
            labels(RATE_LIMIT_REJECTED, tier=client.tier.name).inc()
            return app_error_response(
                RateLimited(
                    f"Rate limit of the {client.tier.name} tier exceeded; retry after "
                    f"{headers['Retry-After']} s.",
                    extra={"tier": client.tier.name},
                    headers=headers,
                ),
                instance=request.path,
            )
        response = self.get_response(request)
        for name, value in headers.items():
            response[name] = value
        return response


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting in {"RATE_LIMIT_TIERS", "RATE_LIMIT_FAIL_OPEN_TIERS"}:
        _tiers.cache_clear()
    if setting == "REDIS_URL":
        _script.cache_clear()
