"""Errors of the SaaS core and its API. Codes are stable: clients match on them."""

from __future__ import annotations

from regions.errors import (
    AppError,
    AuthenticationFailed,
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
)


class EmailTaken(Conflict):
    code = "email_taken"
    title = "Email already registered"


class SlugTaken(Conflict):
    code = "slug_taken"
    title = "Organization slug already taken"


class AlreadyMember(Conflict):
    code = "already_member"
    title = "Already a member"


class LastOwner(Conflict):
    """An organization always keeps at least one owner."""

    code = "last_owner"
    title = "The last owner cannot be removed or demoted"


class CrossRegionMembership(Conflict):
    """A user homed in another region than the organization (docs/decisions/0006)."""

    code = "cross_region_membership"
    title = "Cross-region membership is not supported"


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "No user with this email in this region"


class InvalidCredentials(AuthenticationFailed):
    code = "invalid_credentials"
    title = "Invalid email or password"


class IdempotencyKeyInvalid(BadRequest):
    code = "idempotency_key_invalid"
    title = "Malformed Idempotency-Key"


class IdempotencyKeyReused(AppError):
    """The key was first used with another request body."""

    code = "idempotency_key_reused"
    status = 422
    title = "Idempotency-Key reused with a different request"


class IdempotencyRequestInFlight(Conflict):
    """The first request with this key has not finished yet."""

    code = "idempotency_request_in_flight"
    title = "A request with this Idempotency-Key is still being processed"


class RateLimiterUnavailable(ServiceUnavailable):
    """The rate limiter cannot reach Redis and this tier fails closed."""

    code = "rate_limiter_unavailable"
    title = "Rate limiter unavailable"
