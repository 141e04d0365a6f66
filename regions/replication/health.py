"""Polling peers' readiness; the result goes to ``regions.peer_health`` for residency failover.

A peer that answers again also ends its circuit breaker's open period, so
replication probes it within one poll interval of its recovery.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from django.conf import settings

from regions.peer_health import peer_status_record
from regions.replication.breaker import breaker_expedite
from regions.replication.client import http_client
from regions.replication.drain import drain_request
from regions.request_context import current_request_id
from regions.selectors import get_registry


def _poll(code: str, url: str, timeout: float, request_id: str) -> tuple[str, bool, str]:
    try:
        response = http_client().get(url, timeout=timeout, headers={"X-Request-ID": request_id})
    except httpx.HTTPError as exc:
        return code, False, type(exc).__name__
    return code, response.status_code == 200, f"HTTP {response.status_code}"


def peer_health_poll() -> dict[str, bool]:
    """Poll every peer's readiness endpoint in parallel and record each result."""
    peers = get_registry().peers(settings.REGION)
    if not peers:
        return {}
    path = str(settings.PEER_HEALTH_PATH)
    timeout = float(settings.PEER_HEALTH_TIMEOUT)
    request_id = current_request_id() or f"peer-health-{int(time.time())}"
    with ThreadPoolExecutor(max_workers=len(peers)) as pool:
        polled = list(
            pool.map(
                lambda region: _poll(region.code, region.internal_url + path, timeout, request_id), peers
            )
        )
    reopened = []
    for code, healthy, detail in polled:
        peer_status_record(code=code, healthy=healthy, detail=detail)
        if healthy and breaker_expedite(peer=code):
            reopened.append(code)
    if reopened:
        drain_request(peers=reopened)  # probe the recovered peers now
    return {code: healthy for code, healthy, _ in polled}
