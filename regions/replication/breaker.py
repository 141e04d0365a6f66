"""A circuit breaker per peer region, shared by every process of this region through Redis.

States: ``closed`` (requests flow; consecutive failures are counted), ``open``
(no request until ``open_until``), ``half_open`` (exactly one process holds the
probe lease and sends one request; its outcome closes or reopens the breaker).
Every transition is one Lua script, so concurrent workers never race: two
processes cannot both take the probe, and a late success from before the
breaker opened cannot close it.

Open periods grow with each consecutive opening, with jitter and a cap
(``REPLICATION_BREAKER_OPEN_BASE`` .. ``REPLICATION_BREAKER_OPEN_CAP``), so a
long outage costs one probe per period, not a storm of requests.

Why not pybreaker: its Redis storage does read-modify-write from the client
(two workers can both see ``half_open`` and both probe) and has no probe lease
that expires when the prober dies. Without Redis (the embedded mode) the
breaker is always closed; when Redis fails the breaker fails open (allows),
since the outbox and backoff still bound the damage.
"""

from __future__ import annotations

import enum
import logging
import random
import secrets
from dataclasses import dataclass

import redis
from django.conf import settings

from regions.metrics import REPLICATION_BREAKER_STATE, labels
from regions.redis import region_redis
from regions.replication.backoff import backoff_delay

logger = logging.getLogger(__name__)

_KEY = "replication:breaker:{peer}"

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)"

_ACQUIRE = (
    _NOW
    + """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {'closed', 0} end
if state == 'open' then
  local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
  if now < open_until then return {'deny', open_until - now} end
else
  local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
  if now < probe_until then return {'deny', probe_until - now} end
end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe', ARGV[1], 'probe_until', now + tonumber(ARGV[2]))
return {'probe', 0}
"""
)

_SUCCESS = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'open' then return 'open' end
if state == 'half_open' and redis.call('HGET', KEYS[1], 'probe') ~= ARGV[1] then return 'half_open' end
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'opens', 0)
redis.call('HDEL', KEYS[1], 'probe', 'probe_until', 'open_until')
return 'closed'
"""

_FAILURE = (
    _NOW
    + """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'open' then
  return {'open', tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0') - now}
end
if state == 'half_open' then
  if redis.call('HGET', KEYS[1], 'probe') ~= ARGV[1] then return {'half_open', 0} end
else
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if failures < tonumber(ARGV[2]) then return {'closed', failures} end
end
local opens = tonumber(redis.call('HGET', KEYS[1], 'opens') or '0')
local base = tonumber(ARGV[3])
local ceiling = math.min(tonumber(ARGV[4]), base * 2 ^ math.min(opens, 30))
local wait = math.floor(base + tonumber(ARGV[5]) * math.max(0, ceiling - base))
redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', now + wait, 'opens', opens + 1, 'failures', 0)
redis.call('HDEL', KEYS[1], 'probe', 'probe_until')
return {'open', wait}
"""
)

_RELEASE = """
if redis.call('HGET', KEYS[1], 'probe') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'probe_until', 0)
  return 1
end
return 0
"""


_EXPEDITE = """
if redis.call('HGET', KEYS[1], 'state') == 'open' then
  redis.call('HSET', KEYS[1], 'open_until', 0)
  return 1
end
return 0
"""


class BreakerState(enum.IntEnum):
    """Also the value of the ``saas_replication_breaker_state`` gauge."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to send one batch to ``peer``: a normal request, or the single half-open probe."""

    peer: str
    probe: bool
    token: str


@dataclass(frozen=True, slots=True)
class Denied:
    peer: str
    retry_after: float
    """Seconds until the breaker lets a probe through."""


@dataclass(frozen=True, slots=True)
class FailureOutcome:
    state: BreakerState
    retry_after: float
    """Seconds until the next attempt is worth making."""


def _key(peer: str) -> str:
    return _KEY.format(peer=peer)


def _probe_lease_ms() -> int:
    # Longer than a request can take, so a live prober never loses its lease.
    return int((float(settings.REPLICATION_HTTP_TIMEOUT) + 5.0) * 1000)


def _set_gauge(peer: str, state: BreakerState) -> None:
    labels(REPLICATION_BREAKER_STATE, peer=peer).set(int(state))


def breaker_acquire(*, peer: str) -> Permit | Denied:
    """Ask to send to ``peer``; at most one process at a time gets the half-open probe."""
    token = secrets.token_hex(8)
    client = region_redis()
    if client is None:
        return Permit(peer=peer, probe=False, token=token)
    try:
        kind, value = client.eval(_ACQUIRE, 1, _key(peer), token, _probe_lease_ms())
    except redis.RedisError as exc:
        logger.warning("Circuit breaker state unavailable for %s (allowing): %s", peer, exc)
        return Permit(peer=peer, probe=False, token=token)
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind == "deny":
        return Denied(peer=peer, retry_after=int(value) / 1000)
    if kind == "probe":
        _set_gauge(peer, BreakerState.HALF_OPEN)
    return Permit(peer=peer, probe=kind == "probe", token=token)


def breaker_success(permit: Permit) -> None:
    client = region_redis()
    if client is None:
        return
    try:
        state = client.eval(_SUCCESS, 1, _key(permit.peer), permit.token)
    except redis.RedisError as exc:
        logger.warning("Circuit breaker state unavailable for %s: %s", permit.peer, exc)
        return
    if (state.decode() if isinstance(state, bytes) else state) == "closed":
        _set_gauge(permit.peer, BreakerState.CLOSED)


def breaker_failure(permit: Permit, *, rng: random.Random | None = None) -> FailureOutcome:
    """Record a failed request; returns the state and how long to wait before trying again."""
    base = float(settings.REPLICATION_BREAKER_OPEN_BASE)
    client = region_redis()
    if client is None:
        return FailureOutcome(BreakerState.CLOSED, base)
    jitter = (rng or random).random()
    try:
        kind, value = client.eval(
            _FAILURE,
            1,
            _key(permit.peer),
            permit.token,
            int(settings.REPLICATION_BREAKER_THRESHOLD),
            int(base * 1000),
            int(float(settings.REPLICATION_BREAKER_OPEN_CAP) * 1000),
            repr(jitter),
        )
    except redis.RedisError as exc:
        logger.warning("Circuit breaker state unavailable for %s: %s", permit.peer, exc)
        return FailureOutcome(BreakerState.CLOSED, base)
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind == "open":
        _set_gauge(permit.peer, BreakerState.OPEN)
        return FailureOutcome(BreakerState.OPEN, max(int(value) / 1000, 0.0))
    if kind == "half_open":
        return FailureOutcome(BreakerState.HALF_OPEN, base)
    delay = backoff_delay(
        attempt=int(value),
        base=float(settings.REPLICATION_BACKOFF_BASE),
        cap=float(settings.REPLICATION_BACKOFF_CAP),
        rng=rng,
    )
    return FailureOutcome(BreakerState.CLOSED, delay)


def breaker_release(permit: Permit) -> None:
    """Give back an unused probe lease (nothing was sent), so another process may probe at once."""
    client = region_redis()
    if client is None or not permit.probe:
        return
    try:
        client.eval(_RELEASE, 1, _key(permit.peer), permit.token)
    except redis.RedisError as exc:
        logger.warning("Circuit breaker state unavailable for %s: %s", permit.peer, exc)


def breaker_expedite(*, peer: str) -> bool:
    """End an open period now because ``peer`` answers its health check again.

    The next drain then gets the single half-open probe at once instead of
    waiting up to ``REPLICATION_BREAKER_OPEN_CAP``; a failing probe reopens the
    breaker as usual. Returns whether the breaker was open.
    """
    client = region_redis()
    if client is None:
        return False
    try:
        return bool(client.eval(_EXPEDITE, 1, _key(peer)))
    except redis.RedisError as exc:
        logger.warning("Circuit breaker state unavailable for %s: %s", peer, exc)
        return False


def breaker_state(*, peer: str) -> BreakerState:
    """The breaker's current state (``closed`` when unknown)."""
    client = region_redis()
    if client is None:
        return BreakerState.CLOSED
    try:
        raw = client.hget(_key(peer), "state")
    except redis.RedisError:
        return BreakerState.CLOSED
    value = raw.decode() if isinstance(raw, bytes) else (raw or "closed")
    return {"open": BreakerState.OPEN, "half_open": BreakerState.HALF_OPEN}.get(value, BreakerState.CLOSED)


def breaker_reset(*, peer: str) -> None:
    """Forget ``peer``'s breaker state (operators, tests)."""
    client = region_redis()
    if client is not None:
        client.delete(_key(peer))
    _set_gauge(peer, BreakerState.CLOSED)
