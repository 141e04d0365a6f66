"""Peer health cache: recorded results, unknown and stale peers."""

from __future__ import annotations

import time

from regions.peer_health import STALE_AFTER_SECONDS, peer_status_get, peer_status_record


def test_recorded_status_is_read_back_and_goes_stale():
    peer_status_record(code="us-east-1", healthy=False, detail="503 from /health/ready")
    status = peer_status_get(code="us-east-1")
    assert status.healthy is False and status.detail == "503 from /health/ready"
    later = time.time() + STALE_AFTER_SECONDS + 1
    assert peer_status_get(code="us-east-1", now=later).healthy is None


def test_never_polled_peer_is_unknown():
    assert peer_status_get(code="ap-south-1").healthy is None
