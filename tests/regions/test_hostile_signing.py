"""Forged and replayed inter-region signatures, over real HTTP against gunicorn.

The signed internal endpoints (``/internal/replication/apply``,
``/internal/audit/peer-report``) of a running eu-west-1: a wrong key, a
tampered body, path or method, a stale or future timestamp, a replayed nonce
and missing headers each get ``401`` problem+json with ``WWW-Authenticate``,
and change nothing (row counts on the primary). A genuine request first shows
that the same request, correctly signed, does change state.
"""

from __future__ import annotations

import json
import time

import pytest

from regions.replication.events import directory_shard
from regions.signing import sign_request
from tests.harness.stack import TEST_SECRETS
from tests.regions.replication.test_apply import event
from tests.saas.test_hostile_input import problem, request, snapshot

KEYS = TEST_SECRETS["REPLICATION_SIGNING_KEYS"].split(",")
APPLY = "/internal/replication/apply"
PEER_REPORT = "/internal/audit/peer-report"


def batch(key: str) -> bytes:
    """A genuine batch from us-east-1 to eu-west-1: one directory entry homed in us-east-1."""
    entry = event(key, 1, home="us-east-1")
    entry["payload"]["origin_region"] = "us-east-1"
    entry["shard"] = directory_shard(entry["payload"])
    return json.dumps({"origin": "us-east-1", "target": "eu-west-1", "events": [entry]}).encode()


def forgeries(path: str, body: bytes) -> dict[str, tuple[dict[str, str], bytes, str]]:
    """attack -> (headers, body, expected code)."""
    signed = sign_request(method="POST", path=path, body=body, keys=KEYS)
    flipped = signed["X-Region-Signature"][:-1] + ("0" if signed["X-Region-Signature"][-1] != "0" else "1")
    return {
        "wrong key": (
            sign_request(method="POST", path=path, body=body, keys=["not-the-fleet-key"]),
            body,
            "signature_invalid",
        ),
        "flipped signature": ({**signed, "X-Region-Signature": flipped}, body, "signature_invalid"),
        "tampered body": (signed, body.replace(b"1", b"2", 1) + b" ", "signature_invalid"),
        "other path": (
            sign_request(method="POST", path="/internal/other", body=body, keys=KEYS),
            body,
            "signature_invalid",
        ),
        "stale": (
            sign_request(method="POST", path=path, body=body, keys=KEYS, timestamp=int(time.time()) - 3600),
            body,
            "signature_stale",
        ),
        "future": (
            sign_request(method="POST", path=path, body=body, keys=KEYS, timestamp=int(time.time()) + 3600),
            body,
            "signature_stale",
        ),
        "no headers": ({}, body, "signature_invalid"),
        "no signature": (
            {k: v for k, v in signed.items() if k != "X-Region-Signature"},
            body,
            "signature_invalid",
        ),
        "no nonce": ({k: v for k, v in signed.items() if k != "X-Region-Nonce"}, body, "signature_invalid"),
        "malformed nonce": (
            {**signed, "X-Region-Nonce": "../../etc/passwd\x7f"[:16]},
            body,
            "signature_invalid",
        ),
        "non-numeric timestamp": ({**signed, "X-Region-Timestamp": "' OR 1=1--"}, body, "signature_invalid"),
    }


@pytest.mark.slow
@pytest.mark.parametrize("path", [APPLY, PEER_REPORT])
def test_forged_and_replayed_signatures_are_401_problems_and_change_nothing(
    harness, transactional_db, region_web, path
):
    eu = harness.region("eu-west-1")
    region_web("eu-west-1")
    json_headers = {"Content-Type": "application/json"}
    body = batch("hostile-acme") if path == APPLY else json.dumps({"checks": None}).encode()

    before = snapshot(eu)
    for attack, (headers, sent, code) in forgeries(path, body).items():
        answer = request(eu.base_url, "POST", path, headers={**json_headers, **headers}, body=sent)
        assert answer[0] == 401, (attack, answer[0], answer[2][:200])
        assert problem(answer, 401, code), attack
        assert "www-authenticate" in answer[1], attack
        assert snapshot(eu) == before, attack

    # The genuine request changes state once; replaying it byte for byte (same nonce) does not.
    genuine = {**json_headers, **sign_request(method="POST", path=path, body=body, keys=KEYS)}
    status, _, content = request(eu.base_url, "POST", path, headers=genuine, body=body)
    assert status == 200, content[:300]
    if path == APPLY:
        assert [r["status"] for r in json.loads(content)["results"]] == ["applied"], content[:300]
    after = snapshot(eu)
    changed = {"residency_directoryentry", "regions_inboxevent"} if path == APPLY else {"residency_auditrun"}
    assert {table for table in after if after[table] != before[table]} == changed
    problem(request(eu.base_url, "POST", path, headers=genuine, body=body), 401, "nonce_reused")
    # A replayed nonce with a fresh signature over another body is refused as well.
    other = batch("hostile-other") if path == APPLY else json.dumps({"checks": []}).encode()
    resigned = sign_request(method="POST", path=path, body=other, keys=KEYS, nonce=genuine["X-Region-Nonce"])
    problem(
        request(eu.base_url, "POST", path, headers={**json_headers, **resigned}, body=other),
        401,
        "nonce_reused",
    )
    assert snapshot(eu) == after
