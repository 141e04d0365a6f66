"""Signed HTTP calls to peer regions (httpx, one pooled client per process)."""

from __future__ import annotations

import functools
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from regions.request_context import current_request_id
from regions.selectors import get_registry
from regions.signing import sign_request

APPLY_PATH = "/internal/replication/apply"
ORIGIN_HEADER = "X-Region-Origin"


class PeerUnavailable(Exception):
    """The peer could not be reached or did not answer the batch as a whole (no per-event results)."""


@dataclass(frozen=True, slots=True)
class EventResult:
    status: str
    """``applied``, ``stale``, ``duplicate``, ``rejected``, ``error`` or ``blocked``."""
    detail: str = ""


@functools.lru_cache(maxsize=4)
def _client(pid: int, timeout: float) -> httpx.Client:
    # Keyed by PID: a Celery prefork child never reuses its parent's sockets.
    return httpx.Client(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        follow_redirects=False,
    )


def http_client() -> httpx.Client:
    return _client(os.getpid(), float(settings.REPLICATION_HTTP_TIMEOUT))


def _headers(*, body: bytes, path: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Request-ID": current_request_id() or uuid.uuid4().hex,
        ORIGIN_HEADER: str(settings.REGION),
        **sign_request(method="POST", path=path, body=body, keys=settings.REPLICATION_SIGNING_KEYS),
    }


def signed_post(*, peer: str, path: str, body: bytes, timeout: float | None = None) -> httpx.Response:
    """POST ``body`` to ``path`` on ``peer``'s internal origin (from the registry), signed.

    Raises ``httpx.HTTPError`` when the peer cannot be reached.
    """
    url = get_registry().region(peer).internal_url + path
    headers = _headers(body=body, path=path)
    if timeout is None:
        return http_client().post(url, content=body, headers=headers)
    return http_client().post(url, content=body, headers=headers, timeout=timeout)


def encode_batch(*, target: str, events: list[Mapping[str, Any]]) -> bytes:
    envelope = {"origin": settings.REGION, "target": target, "events": events}
    return json.dumps(envelope, separators=(",", ":"), default=str).encode()


def post_batch(*, peer: str, body: bytes) -> dict[str, EventResult]:
    """Send a signed batch to ``peer``'s apply endpoint; the per-event results by event id.

    Raises ``PeerUnavailable`` when the peer cannot be reached, times out or
    answers anything but a well-formed 200.
    """
    try:
        response = signed_post(peer=peer, path=APPLY_PATH, body=body)
    except httpx.HTTPError as exc:
        raise PeerUnavailable(f"{type(exc).__name__}: {exc}"[:200]) from None
    if response.status_code != 200:
        code = ""
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            code = str(response.json().get("code", ""))
        raise PeerUnavailable(f"HTTP {response.status_code} {code}".strip())
    try:
        results = response.json()["results"]
        return {
            str(item["id"]): EventResult(
                status=str(item["status"]),
                detail=" ".join(str(item.get(part, "")) for part in ("code", "detail")).strip()[:250],
            )
            for item in results
        }
    except (ValueError, KeyError, TypeError):
        raise PeerUnavailable("Malformed answer from the apply endpoint") from None
