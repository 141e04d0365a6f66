"""Signed inter-region requests: HMAC-SHA256 over method, path, timestamp, nonce and body.

Used by replication (``/internal/replication/apply``) and reusable by any
inter-region call (the fleet audit). The canonical string is::

    METHOD \\n PATH \\n TIMESTAMP \\n NONCE \\n hex(SHA-256(body))

Keys are a list so they can be rotated: the first key signs and every key
verifies. Rotation: add the new key at the end everywhere, move it first
everywhere, then drop the old one.

A receiver rejects (401, nothing done) a missing or malformed header, a
timestamp more than ``max_age`` seconds from its clock, a signature that no key
produces, and a nonce it has already seen within twice ``max_age``. Nonces are
claimed (atomically, ``SET NX`` through the cache) only after the signature is
valid, so forged requests cannot burn them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from regions.errors import NonceReused, SignatureInvalid, SignatureStale

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Region-Timestamp"
NONCE_HEADER = "X-Region-Nonce"
SIGNATURE_HEADER = "X-Region-Signature"
SIGNATURE_SCHEME = "sha256="

_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def canonical_string(*, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((method.upper(), path, timestamp, nonce, digest)).encode()


def _mac(key: str, message: bytes) -> str:
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def sign_request(
    *,
    method: str,
    path: str,
    body: bytes,
    keys: Sequence[str],
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers that sign a request with the first of ``keys``."""
    if not keys:
        raise ValueError("No signing key configured.")
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_urlsafe(24)
    message = canonical_string(method=method, path=path, timestamp=stamp, nonce=nonce, body=body)
    return {
        TIMESTAMP_HEADER: stamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: SIGNATURE_SCHEME + _mac(keys[0], message),
    }


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    timestamp: int
    nonce: str
    key_index: int
    """Which key verified it (0 = current); a non-zero index means a sender still uses an old key."""


def nonce_claim(*, namespace: str, nonce: str, ttl: int) -> bool:
    """Record ``nonce`` as used; ``False`` when it was already used within ``ttl`` seconds."""
    return bool(cache.add(f"nonce:{namespace}:{nonce}", 1, timeout=ttl))


def verify_request(
    *,
    method: str,
    path: str,
    body: bytes,
    headers: Mapping[str, str],
    keys: Sequence[str],
    max_age: int,
    namespace: str,
    now: float | None = None,
) -> VerifiedRequest:
    """Check a signed request; raise ``SignatureInvalid``/``SignatureStale``/``NonceReused`` (401)."""
    stamp = headers.get(TIMESTAMP_HEADER, "")
    nonce = headers.get(NONCE_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not stamp.isdigit() or not _NONCE_RE.match(nonce) or not signature.startswith(SIGNATURE_SCHEME):
        raise SignatureInvalid("The request is not signed, or its signature headers are malformed.")
    if abs((time.time() if now is None else now) - int(stamp)) > max_age:
        raise SignatureStale(f"The request timestamp is more than {max_age} s from this region's clock.")
    message = canonical_string(method=method, path=path, timestamp=stamp, nonce=nonce, body=body)
    given = signature[len(SIGNATURE_SCHEME) :]
    matches = [index for index, key in enumerate(keys) if hmac.compare_digest(_mac(key, message), given)]
    if not matches:
        raise SignatureInvalid("The request signature does not match.")
    if not nonce_claim(namespace=namespace, nonce=nonce, ttl=2 * max_age):
        raise NonceReused("This nonce was already used; sign every request with a fresh one.")
    return VerifiedRequest(timestamp=int(stamp), nonce=nonce, key_index=matches[0])


def verify_peer_request(request: HttpRequest, *, namespace: str) -> HttpResponse | None:
    """Check a peer region's signed request; ``None`` when valid, else the problem to answer.

    401 (``SignatureInvalid`` and subclasses) for a bad, stale or replayed
    signature; 503 with ``Retry-After`` when the nonce store cannot be reached
    (fail closed, the sender retries). The request's body is read here.
    """
    from django.conf import settings

    from regions.errors import ServiceUnavailable
    from regions.metrics import REPLICATION_SIGNATURE_REJECTED, labels
    from regions.problems import app_error_response

    try:
        verify_request(
            method=request.method or "POST",
            path=request.get_full_path(),
            body=request.body,
            headers=request.headers,
            keys=settings.REPLICATION_SIGNING_KEYS,
            max_age=int(settings.REPLICATION_SIGNATURE_MAX_AGE),
            namespace=namespace,
        )
    except SignatureInvalid as exc:
        labels(REPLICATION_SIGNATURE_REJECTED, code=exc.code).inc()
        logger.warning("Refused a signed %s request: %s", namespace, exc.code)
        return app_error_response(exc, instance=request.path)
    except Exception as exc:  # the nonce store (Redis) is down: fail closed, retryable
        logger.error("Cannot verify %s request nonces: %s", namespace, type(exc).__name__)
        return app_error_response(
            ServiceUnavailable("Cannot check request nonces right now.", headers={"Retry-After": "5"}),
            instance=request.path,
        )
    return None
