"""Idempotency-Key for POST and PATCH (IETF draft-ietf-httpapi-idempotency-key-header, Stripe).

Protocol (``saas.api.base.ApiView`` drives it):

1. The header is an RFC 8941 structured-field *string*: ``Idempotency-Key: "8e03978e-..."``.
   Anything else, an empty string or more than 255 characters is ``400 idempotency_key_invalid``.
2. The key is scoped to (client, method, route): the client is the API token,
   else the session user, else a keyed hash of the client IP. The request body
   is fingerprinted (SHA-256 of canonical JSON, or of the raw bytes).
3. **Claim** (fast path for concurrent duplicates): ``SET idem:<scope> <token> NX PX <lease>``
   in the region's Redis. When another request holds it, the record is looked up:
   - completed with another fingerprint → ``422 idempotency_key_reused``;
   - completed → its status, headers and body are replayed with ``Idempotent-Replayed: true``;
   - not there yet → ``409 idempotency_request_in_flight`` with ``Retry-After``.
   A claim left by a crashed request expires with its lease (``IDEMPOTENCY_LEASE_SECONDS``).
4. **Effect and record, one transaction** on the region primary: the view runs,
   then the response is inserted as the record with ``ON CONFLICT (scope_hash)
   DO NOTHING``. The unique scope is what guarantees exactly one effect: if a
   record already exists (a request that outlived its lease, or ran while Redis
   was down), this transaction is rolled back and the stored response is
   replayed (or 422 on another fingerprint). A concurrent insert of the same
   scope waits for the other transaction and then conflicts.
5. Not stored (the claim is released so the client can correct and retry with
   the same key): 400, 413 and 415 (the request never started executing, as
   Stripe does for failed parameter validation) and every 5xx or crash.
6. Records are kept ``IDEMPOTENCY_RETENTION_HOURS`` (at least 24) and then
   deleted by the periodic task ``saas.idempotency_records_purge``.

Without Redis (down, or the embedded mode) there is no claim: duplicates are
still applied once (step 4); a concurrent duplicate waits instead of getting 409.
The outage is logged.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import connections, router
from django.http import HttpResponse
from django.utils import timezone

from regions.jsonbody import json_loads
from regions.redis import region_redis
from saas.errors import IdempotencyKeyInvalid, IdempotencyKeyReused, IdempotencyRequestInFlight
from saas.models import IdempotencyRecord

logger = logging.getLogger(__name__)

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
            json_loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, UnicodeDecodeError, RecursionError):
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def scope_hash(*, client: str, method: str, route: str, key: str) -> str:
    return hashlib.sha256("\n".join((client, method, route, key)).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    scope: str
    client: str
    method: str
    route: str
    fingerprint: str
    lease_token: str | None
    """The Redis claim's value, ``None`` when no claim could be taken (Redis unavailable)."""


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


_CLAIM_KEY = "idem:{scope}"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def _db() -> str:
    """Idempotency records are read where they are written: the region primary."""
    return router.db_for_write(IdempotencyRecord)


def _in_flight() -> IdempotencyRequestInFlight:
    return IdempotencyRequestInFlight(
        "The first request with this Idempotency-Key is still being processed; retry later.",
        headers={"Retry-After": str(settings.IDEMPOTENCY_RETRY_AFTER_SECONDS)},
    )


def _outcome(record: IdempotencyRecord, fingerprint: str) -> StoredResponse:
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used with a different request body; use a new key."
        )
    return StoredResponse(
        status=int(record.response_status),
        body=record.response_body,
        headers={str(k): str(v) for k, v in (record.response_headers or {}).items()},
    )


def _find(scope: str) -> IdempotencyRecord | None:
    return IdempotencyRecord.objects.using(_db()).filter(scope_hash=scope).first()


def _redis_failed(exc: Exception) -> None:
    logger.warning(
        "idempotency: Redis unavailable (%s); no claim, the unique record still applies the effect once",
        type(exc).__name__,
    )


def idempotency_begin(
    *, client: str, method: str, route: str, key: str, fingerprint: str
) -> Claim | StoredResponse:
    """Claim the key for this request, or return the response to replay; raises 409/422 errors."""
    scope = scope_hash(client=client, method=method, route=route, key=key)
    token: str | None = uuid.uuid4().hex
    redis_client = region_redis()
    acquired = True
    if redis_client is None:
        token = None
    else:
        try:
            acquired = bool(
                redis_client.set(
                    _CLAIM_KEY.format(scope=scope),
                    str(token),
                    nx=True,
                    px=settings.IDEMPOTENCY_LEASE_SECONDS * 1000,
                )
            )
        except redis.RedisError as exc:
            _redis_failed(exc)
            token = None
    if not acquired:
        record = _find(scope)
        if record is None:
            raise _in_flight()
        return _outcome(record, fingerprint)
    return Claim(
        scope=scope,
        client=client,
        method=method,
        route=route[:300],
        fingerprint=fingerprint,
        lease_token=token,
    )


def idempotency_complete(*, claim: Claim, response: HttpResponse) -> StoredResponse | None:
    """Insert the record; call at the end of the effect's transaction.

    Returns ``None`` when stored. When a record of this scope already exists,
    returns it (or raises 422 for another fingerprint): the caller must roll
    its transaction back, the effect already happened once.
    """
    db = _db()
    values = {
        "id": uuid.uuid4(),
        "scope_hash": claim.scope,
        "client": claim.client,
        "method": claim.method,
        "route": claim.route,
        "fingerprint": claim.fingerprint,
        "response_status": response.status_code,
        "response_headers": {n: response[n] for n in STORED_RESPONSE_HEADERS if response.has_header(n)},
        "response_body": response.content.decode("utf-8"),
        "home_region": settings.REGION,
        "created_at": timezone.now(),
    }
    connection = connections[db]
    meta = IdempotencyRecord._meta
    concrete = {f.name: f for f in meta.concrete_fields}
    fields = [concrete[name] for name in values]
    columns = ", ".join(connection.ops.quote_name(f.get_attname_column()[1] or f.name) for f in fields)
    params = [f.get_db_prep_save(values[f.name], connection) for f in fields]
    # Identifiers come from the model's metadata, values are parameters. Raw SQL because the
    # ORM cannot say whether an INSERT ... ON CONFLICT DO NOTHING inserted (without a savepoint).
    scope_column = connection.ops.quote_name(concrete["scope_hash"].get_attname_column()[1] or "scope_hash")
    sql = (
        f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({scope_column}) DO NOTHING RETURNING 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.fetchone() is not None
    if inserted:
        return None
    record = _find(claim.scope)
    if record is None:  # the other transaction rolled back after all: nothing to replay
        raise _in_flight()
    return _outcome(record, claim.fingerprint)


@functools.lru_cache(maxsize=4)
def _release_script(client: redis.Redis) -> Any:
    """The release script, registered: ``EVALSHA`` instead of the script's text each time."""
    return client.register_script(_RELEASE)


def idempotency_release(*, claim: Claim) -> None:
    """Drop our Redis claim so the client may retry with the same key at once."""
    redis_client = region_redis()
    if redis_client is None or claim.lease_token is None:
        return
    try:
        _release_script(redis_client)(keys=[_CLAIM_KEY.format(scope=claim.scope)], args=[claim.lease_token])
    except redis.RedisError as exc:
        _redis_failed(exc)


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
