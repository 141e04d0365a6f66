"""Idempotency-Key for POST and PATCH (IETF draft-ietf-httpapi-idempotency-key-header, Stripe).

Protocol (``saas.api.base.ApiView`` drives it):

1. The header is an RFC 8941 structured-field *string*: ``Idempotency-Key: "8e03978e-..."``.
   Anything else, an empty string or more than 255 characters is ``400 idempotency_key_invalid``.
2. The key is scoped to (client, method, route): the client is the API token,
   else the session user, else a keyed hash of the client IP. The request body
   is fingerprinted (SHA-256 of canonical JSON, or of the raw bytes).
3. **Claim**: an ``in_flight`` record is inserted and committed on the region
   primary, with a lease (``IDEMPOTENCY_LEASE_SECONDS``, on the database clock).
   - same scope, other fingerprint → ``422 idempotency_key_reused``;
   - same scope, completed → the stored status, headers and body are replayed
     with ``Idempotent-Replayed: true``;
   - same scope, in flight with a live lease → ``409 idempotency_request_in_flight``
     with ``Retry-After``;
   - same scope, in flight with an expired lease (the first request crashed)
     → this request takes the claim over with a new lease token.
4. **Effect**: the view runs inside one transaction that ends by storing the
   response in the record (only if the lease token is still ours). Effect and
   record commit together or not at all, so exactly one effect happens.
5. Not stored (the claim is released so the client can correct and retry with
   the same key): 400, 413 and 415 (the request never started executing, as
   Stripe does for failed parameter validation) and every 5xx or crash.
6. Records are kept ``IDEMPOTENCY_RETENTION_HOURS`` (at least 24) and then
   deleted by the periodic task ``saas.idempotency_records_purge``.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, router, transaction
from django.db.models.functions import Now
from django.http import HttpResponse
from django.utils import timezone

from saas.errors import IdempotencyKeyInvalid, IdempotencyKeyReused, IdempotencyRequestInFlight
from saas.models import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
METHODS = frozenset({"POST", "PATCH"})
MAX_KEY_LENGTH = 255
NOT_STORED_STATUSES = frozenset({400, 413, 415})
STORED_RESPONSE_HEADERS = ("Content-Type", "Location")

# RFC 8941 sf-string, then optional parameters (ignored, as RFC 8941 asks for unknown ones).
_SF_STRING = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
_SF_PARAMS = re.compile(
    r'(?:;[ ]*[a-z*][a-z0-9_\-.*]*(?:=(?:"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"|[^;"\s]+))?)*'
)


def parse_key(value: str) -> str:
    """The key in an ``Idempotency-Key`` header value; raises ``IdempotencyKeyInvalid``."""
    text = value.strip(" \t")
    found = _SF_STRING.match(text)
    if found is None or _SF_PARAMS.fullmatch(text[found.end() :]) is None:
        raise IdempotencyKeyInvalid(
            'Idempotency-Key must be a structured-field string, e.g. Idempotency-Key: "4e6a1f0c-...".'
        )
    key = re.sub(r"\\([\"\\])", r"\1", found.group(1))
    if not key or len(key) > MAX_KEY_LENGTH:
        raise IdempotencyKeyInvalid(f"Idempotency-Key must hold 1 to {MAX_KEY_LENGTH} characters.")
    return key


def fingerprint(body: bytes) -> str:
    """SHA-256 of the body: canonical JSON (sorted keys, no spaces) when it parses, else the bytes."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def scope_hash(*, client: str, method: str, route: str, key: str) -> str:
    return hashlib.sha256("\n".join((client, method, route, key)).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    record_id: uuid.UUID
    lease_token: uuid.UUID


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)

    def replay(self) -> HttpResponse:
        response = HttpResponse(self.body, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        response[REPLAYED_HEADER] = "true"
        return response


def _db() -> str:
    """Idempotency records are read where they are written: the region primary."""
    return router.db_for_write(IdempotencyRecord)


def _lease() -> timedelta:
    return timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS)


def _stored(record: IdempotencyRecord) -> StoredResponse:
    return StoredResponse(
        status=int(record.response_status or 200),
        body=record.response_body,
        headers={str(k): str(v) for k, v in (record.response_headers or {}).items()},
    )


def _in_flight() -> IdempotencyRequestInFlight:
    return IdempotencyRequestInFlight(
        "The first request with this Idempotency-Key is still being processed; retry later.",
        headers={"Retry-After": str(settings.IDEMPOTENCY_RETRY_AFTER_SECONDS)},
    )


def idempotency_begin(
    *, client: str, method: str, route: str, key: str, fingerprint: str
) -> Claim | StoredResponse:
    """Claim the key for this request, or return the response to replay; raises 409/422 errors.

    Call it outside any transaction: the claim must be committed (visible to
    concurrent requests) before the effect starts.
    """
    db = _db()
    scope = scope_hash(client=client, method=method, route=route, key=key)
    lease_token = uuid.uuid4()
    try:
        with transaction.atomic(using=db):
            record = IdempotencyRecord.objects.using(db).create(
                scope_hash=scope,
                client=client,
                method=method,
                route=route[:300],
                fingerprint=fingerprint,
                state=IdempotencyRecord.State.IN_FLIGHT,
                lease_token=lease_token,
                lease_expires_at=Now() + _lease(),
                home_region=settings.REGION,
            )
        return Claim(record_id=record.pk, lease_token=lease_token)
    except IntegrityError:
        pass
    for _attempt in range(2):
        record = IdempotencyRecord.objects.using(db).get(scope_hash=scope)
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used with a different request body; use a new key."
            )
        if record.state == IdempotencyRecord.State.COMPLETED:
            return _stored(record)
        taken = (
            IdempotencyRecord.objects.using(db)
            .filter(pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT, lease_expires_at__lt=Now())
            .update(lease_token=lease_token, lease_expires_at=Now() + _lease())
        )
        if taken:
            return Claim(record_id=record.pk, lease_token=lease_token)
        # Still leased, unless it completed between our read and the update: look once more.
    raise _in_flight()


def idempotency_complete(*, claim: Claim, response: HttpResponse) -> None:
    """Store the response; call inside the effect's transaction. Raises 409 if the lease was lost."""
    headers = {name: response[name] for name in STORED_RESPONSE_HEADERS if response.has_header(name)}
    stored = (
        IdempotencyRecord.objects.using(_db())
        .filter(pk=claim.record_id, lease_token=claim.lease_token, state=IdempotencyRecord.State.IN_FLIGHT)
        .update(
            state=IdempotencyRecord.State.COMPLETED,
            response_status=response.status_code,
            response_headers=headers,
            response_body=response.content.decode("utf-8"),
            lease_expires_at=None,
            completed_at=Now(),
        )
    )
    if not stored:
        # Our lease expired and another request took the claim over: it owns the effect.
        raise _in_flight()


def idempotency_release(*, claim: Claim) -> None:
    """Drop our claim so the client may retry with the same key."""
    IdempotencyRecord.objects.using(_db()).filter(
        pk=claim.record_id, lease_token=claim.lease_token, state=IdempotencyRecord.State.IN_FLIGHT
    ).delete()


def is_stored(status: int) -> bool:
    return status < 500 and status not in NOT_STORED_STATUSES


def idempotency_records_purge(*, batch_size: int = 1000) -> int:
    """Delete records older than the retention, in batches. Returns how many were deleted."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_RETENTION_HOURS)
    db = _db()
    deleted = 0
    while True:
        ids = list(
            IdempotencyRecord.objects.using(db)
            .filter(created_at__lt=cutoff)
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        count, _ = IdempotencyRecord.objects.using(db).filter(pk__in=ids).delete()
        deleted += count
