"""Causal tokens: "this client has seen the primary up to LSN x", signed.

A token is ``TimestampSigner(salt=...).sign("<region>.<lsn hex>")``: the
region it was issued in (an LSN means nothing on another region's cluster),
the primary's WAL insert LSN after the client's last write, the signing time
and an HMAC-SHA256 under ``SECRET_KEY``. It travels

- in a signed cookie (``causal-<region>``, HttpOnly) for browsers,
- in the ``X-Causal-Token`` response header, which API clients send back,
- per user in the region's Redis, so the user's other devices read their writes,
- in Celery task headers (``causal_token``), so a task reads what its request wrote.

Why a token can expire: the router only reads from replicas whose lag is
under ``ROUTING_MAX_REPLICA_LAG_SECONDS`` (as of the last probe), so every
usable replica has replayed whatever was committed longer ago than that limit
plus the probe's age. ``token_ttl_seconds()`` is that bound plus a margin.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing

from regions.redis import region_redis
from regions.routing.lsn import LSN_MAX

logger = logging.getLogger(__name__)

HEADER = "X-Causal-Token"
REQUEST_META_KEY = "HTTP_X_CAUSAL_TOKEN"
TASK_HEADER = "causal_token"
TASK_PRIMARY_HEADER = "causal_primary"
"""Task header meaning "read from the primary": set when the task was published inside a transaction."""
MAX_TOKEN_LENGTH = 160
_SALT = "regions.routing.causal-token"
_USER_KEY = "routing:causal:user:{user_id}"

# Raise a user's stored LSN, never lower it (two devices may write at once).
# LSNs are stored as 16 hex digits, so string order is numeric order.
_RAISE_SCRIPT = """
local current = redis.call('GET', KEYS[1])
if (not current) or current < ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 0
"""


def cookie_name() -> str:
    return f"causal-{settings.REGION}"


def token_ttl_seconds() -> int:
    """How long a token matters: the lag limit, plus the probe's staleness, plus a margin."""
    limit = float(settings.ROUTING_MAX_REPLICA_LAG_SECONDS)
    interval = float(settings.ROUTING_PROBE_INTERVAL_SECONDS)
    return math.ceil(limit + 3 * interval + 5)


def issue(lsn: int) -> str:
    """A signed token for ``lsn`` in this region."""
    return signing.TimestampSigner(salt=_SALT).sign(f"{settings.REGION}.{lsn:X}")


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: str
    """``valid``, ``expired``, ``other_region`` or ``invalid``."""
    lsn: int = 0


def verify(raw: str | None) -> Verdict | None:
    """Judge a token from a client or a task header. ``None`` when there is none.

    Forged, tampered and garbled tokens are ``invalid`` (the caller reads from
    the primary); expired ones and other regions' are harmless and ignored.
    Nothing here raises.
    """
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_TOKEN_LENGTH or not raw.isascii():
        return Verdict("invalid")
    signer = signing.TimestampSigner(salt=_SALT)
    try:
        value = signer.unsign(raw, max_age=token_ttl_seconds())
    except signing.SignatureExpired:
        return Verdict("expired")
    except (signing.BadSignature, ValueError, TypeError, OverflowError):
        return Verdict("invalid")
    region, sep, lsn_hex = value.rpartition(".")
    try:
        lsn = int(lsn_hex, 16)
    except ValueError:
        return Verdict("invalid")
    if not sep or not 0 <= lsn <= LSN_MAX:
        return Verdict("invalid")
    if region != settings.REGION:
        return Verdict("other_region")
    return Verdict("valid", lsn)


# --- Per-user tokens in the region's Redis ------------------------------------


class TokenStoreUnavailable(Exception):
    """The region's Redis did not answer: the user's other-device token is unknown."""


def user_key(user_id: str) -> str:
    """The Redis key of ``user_id``'s per-user token (for callers that read it in their own round trip)."""
    return _USER_KEY.format(user_id=user_id)


def parse_user_lsn(raw: bytes | str | None) -> int:
    """The LSN stored under a per-user key (0 if none or garbled)."""
    if raw is None:
        return 0
    try:
        return int(raw, 16)
    except (TypeError, ValueError):
        return 0


def user_lsn_get(user_id: str) -> int:
    """The highest LSN recorded for ``user_id`` (0 if none or without Redis)."""
    client = region_redis()
    if client is None:
        return 0
    try:
        raw = client.get(user_key(user_id))
    except Exception as exc:
        raise TokenStoreUnavailable(str(exc)) from exc
    return parse_user_lsn(raw)


@functools.lru_cache(maxsize=4)
def _raise_script(client: Any) -> Any:
    """The raise script, registered: ``EVALSHA`` (loaded once) instead of the script's text each time."""
    return client.register_script(_RAISE_SCRIPT)


def user_lsn_raise(user_id: str, lsn: int) -> None:
    """Record that ``user_id`` has written up to ``lsn``. Best effort: Redis errors are logged."""
    client = region_redis()
    if client is None:
        return
    try:
        _raise_script(client)(keys=[user_key(user_id)], args=[f"{lsn:016X}", token_ttl_seconds()])
    except Exception:
        logger.warning("could not store the per-user causal token", exc_info=True)
