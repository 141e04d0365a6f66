"""The application's one error hierarchy.

Every error a client or operator can see is an ``AppError`` with a stable
``code`` (machine-readable, never changes once published), an HTTP ``status``
and a short ``title``. One renderer (``regions.problems``) turns any of them
into an RFC 9457 ``application/problem+json`` response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class AppError(Exception):
    """Base of every error with a stable code."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})
        super().__init__(self.detail)


class BadRequest(AppError):
    code = "bad_request"
    status = 400
    title = "Bad request"


class ValidationFailed(BadRequest):
    """Input failed validation. ``extra["errors"]`` names each field."""

    code = "validation_error"
    title = "Invalid input"


class AuthenticationFailed(AppError):
    code = "not_authenticated"
    status = 401
    title = "Authentication required"


class PermissionDenied(AppError):
    code = "permission_denied"
    status = 403
    title = "Permission denied"


class NotFound(AppError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(AppError):
    code = "conflict"
    status = 409
    title = "Conflict"


class RateLimited(AppError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"


class ServiceUnavailable(AppError):
    code = "service_unavailable"
    status = 503
    title = "Service unavailable"


class ResidencyViolation(AppError):
    """A write of a resident row whose home region is not this region."""

    code = "residency_violation"
    status = 409
    title = "Data residency violation"


class ConfigurationError(AppError):
    """Invalid configuration found at boot (registry, settings)."""

    code = "configuration_error"
    title = "Invalid configuration"


class WrongRegion(AppError):
    """The subject of the request lives in another region. Rendered as a 307 with ``Location``.

    Build it with a target taken from the registry only, never from the request.
    """

    code = "wrong_region"
    status = 307
    title = "Wrong region"

    def __init__(self, *, region: str, location: str, detail: str | None = None) -> None:
        super().__init__(
            detail or f"This resource lives in region {region}; repeat the request there.",
            extra={"region": region, "location": location},
            headers={"Location": location},
        )


class HomeRegionUnavailable(ServiceUnavailable):
    """The subject's home region is down and no allowed region can serve it."""

    code = "home_region_unavailable"
    title = "Home region unavailable"


class SignatureInvalid(AuthenticationFailed):
    """An inter-region request without a valid signature (regions.signing)."""

    code = "signature_invalid"
    title = "Invalid request signature"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'HMAC-SHA256 realm="inter-region"'})


class SignatureStale(SignatureInvalid):
    code = "signature_stale"
    title = "Stale request timestamp"


class NonceReused(SignatureInvalid):
    code = "nonce_reused"
    title = "Reused request nonce"


class ReplicationBatchInvalid(BadRequest):
    """A signed replication batch whose envelope is malformed or not meant for this region."""

    code = "replication_batch_invalid"
    title = "Invalid replication batch"


class PrimaryUnavailable(ServiceUnavailable):
    """The region's primary database cannot be reached (stopped, restarting, failing over).

    Writes, and reads only the primary may serve, answer this with ``Retry-After``
    (``PRIMARY_UNAVAILABLE_RETRY_AFTER``); reads the replicas can serve go on.
    """

    code = "primary_unavailable"
    title = "Primary database unavailable"


class ReadCapacityExhausted(ServiceUnavailable):
    """Replicas cannot serve and the primary's share of their reads is at its cap (regions.routing)."""

    code = "read_capacity_exhausted"
    title = "Read capacity exhausted"
