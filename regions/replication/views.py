"""The internal apply endpoint peers call: ``POST /internal/replication/apply``."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from regions.errors import ReplicationBatchInvalid, ServiceUnavailable
from regions.jsonbody import json_loads
from regions.problems import app_error_response
from regions.replication.apply import replication_batch_apply, replication_origin_valid
from regions.signing import verify_peer_request

logger = logging.getLogger(__name__)

MAX_EVENTS_PER_BATCH = 2000
SIGNATURE_NAMESPACE = "replication"


@csrf_exempt  # authenticated by its HMAC signature, not by a session
@require_POST
def apply_batch(request: HttpRequest) -> HttpResponse:
    """Verify the signature, then apply each event and answer per event.

    401 (nothing applied) for a bad signature, a stale timestamp or a reused
    nonce; 400 for a malformed envelope; 503 when this region cannot check
    nonces or reach its database (the sender retries).
    """
    body = request.body
    refused = verify_peer_request(request, namespace=SIGNATURE_NAMESPACE)
    if refused is not None:
        return refused
    try:
        envelope = json_loads(body)
    except ValueError:
        return app_error_response(ReplicationBatchInvalid("The body is not JSON."), instance=request.path)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("events"), list):
        return app_error_response(
            ReplicationBatchInvalid("The body must be an object with an `events` list."),
            instance=request.path,
        )
    origin, events = envelope.get("origin"), envelope["events"]
    if not replication_origin_valid(origin) or origin != request.headers.get("X-Region-Origin", origin):
        return app_error_response(ReplicationBatchInvalid("Unknown origin region."), instance=request.path)
    if envelope.get("target") != settings.REGION:
        return app_error_response(
            ReplicationBatchInvalid("This batch is addressed to another region."), instance=request.path
        )
    if len(events) > MAX_EVENTS_PER_BATCH:
        return app_error_response(
            ReplicationBatchInvalid(f"At most {MAX_EVENTS_PER_BATCH} events per batch."),
            instance=request.path,
        )
    try:
        outcomes = replication_batch_apply(origin=str(origin), events=events)
    except DatabaseError as exc:  # deadlock, failover...: the whole batch is retried
        logger.error("Replication batch from %s failed: %s", origin, type(exc).__name__)
        return app_error_response(
            ServiceUnavailable("The batch could not be applied; retry.", headers={"Retry-After": "1"}),
            instance=request.path,
        )
    return JsonResponse({"results": [outcome.as_json() for outcome in outcomes]})
