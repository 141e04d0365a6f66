"""The apply endpoint, called as a peer would, in us-east-1 (real PostgreSQL and Redis)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.test import Client

from regions.replication.client import APPLY_PATH
from regions.replication.events import directory_shard
from regions.replication.models import InboxEvent
from regions.signing import sign_request
from residency.models import DirectoryEntry
from tests.harness.stack import TEST_SECRETS

KEYS = TEST_SECRETS["REPLICATION_SIGNING_KEYS"].split(",")  # as settings.test
ORIGIN = "eu-west-1"


def event(key: str, version: int, *, home: str = "eu-west-1", kind: str = "org", event_id: str | None = None):
    payload = {"kind": kind, "key": key, "home_region": home, "version": version, "origin_region": ORIGIN}
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": "directory.entry",
        "shard": directory_shard(payload),
        "created_at": time.time(),
        "payload": payload,
    }


def body_of(events, *, origin=ORIGIN, target="us-east-1") -> bytes:
    return json.dumps({"origin": origin, "target": target, "events": events}).encode()


def post(body: bytes, *, headers=None, keys=KEYS, **sign):
    signed = (
        headers
        if headers is not None
        else sign_request(method="POST", path=APPLY_PATH, body=body, keys=keys, **sign)
    )
    return Client().post(APPLY_PATH, data=body, content_type="application/json", headers=signed)


def results(response):
    assert response.status_code == 200, response.content
    return [item["status"] for item in response.json()["results"]]


def entry(key: str):
    row = DirectoryEntry.objects.filter(kind="org", key=key).first()
    return (row.home_region, row.version) if row else None


@pytest.mark.usefixtures("multi_region_db")
def test_the_same_batch_delivered_three_times_is_applied_once(as_region):
    batch = [event("acme", 1), event("globex", 2, home="us-east-1")]
    with as_region("us-east-1"):
        assert results(post(body_of(batch))) == ["applied", "applied"]
        # Redeliveries are signed afresh (new nonce), as the sender's retries are.
        assert results(post(body_of(batch))) == ["duplicate", "duplicate"]
        assert results(post(body_of(batch))) == ["duplicate", "duplicate"]
        inbox = {str(row.event_id): row for row in InboxEvent.objects.all()}
        assert {e["id"] for e in batch} == set(inbox)
        assert [inbox[e["id"]].deliveries for e in batch] == [3, 3]
        assert entry("acme") == ("eu-west-1", 1) and entry("globex") == ("us-east-1", 2)


@pytest.mark.usefixtures("multi_region_db")
def test_deliveries_out_of_order_end_at_the_newest_version(as_region):
    v1, v2, v3 = event("acme", 1), event("acme", 2, home="eu-central-1"), event("acme", 3, home="us-east-1")
    with as_region("us-east-1"):
        assert results(post(body_of([v3]))) == ["applied"]
        assert results(post(body_of([v1, v2]))) == ["stale", "stale"]
        assert entry("acme") == ("us-east-1", 3)
        assert set(InboxEvent.objects.values_list("outcome", flat=True)) == {"applied", "stale"}


@pytest.mark.usefixtures("multi_region_db")
@pytest.mark.parametrize(
    ("attack", "code"),
    [
        ("tampered_signature", "signature_invalid"),
        ("tampered_body", "signature_invalid"),
        ("stale_timestamp", "signature_stale"),
        ("reused_nonce", "nonce_reused"),
        ("unsigned", "signature_invalid"),
    ],
)
def test_bad_signatures_are_rejected_with_401_and_nothing_is_applied(as_region, attack, code):
    body = body_of([event("acme", 1)])
    with as_region("us-east-1"):
        headers = sign_request(method="POST", path=APPLY_PATH, body=body, keys=KEYS)
        if attack == "tampered_signature":
            signature = headers["X-Region-Signature"]
            headers["X-Region-Signature"] = signature[:-1] + ("0" if signature[-1] != "0" else "1")
        elif attack == "tampered_body":
            body = body_of([event("acme", 1, home="us-east-1")])
        elif attack == "stale_timestamp":
            headers = sign_request(
                method="POST", path=APPLY_PATH, body=body, keys=KEYS, timestamp=int(time.time()) - 3600
            )
        elif attack == "reused_nonce":
            other = body_of([event("other", 1)])
            first = sign_request(method="POST", path=APPLY_PATH, body=other, keys=KEYS)
            assert results(post(other, headers=first)) == ["applied"]
            headers = sign_request(
                method="POST", path=APPLY_PATH, body=body, keys=KEYS, nonce=first["X-Region-Nonce"]
            )
        elif attack == "unsigned":
            headers = {}
        response = post(body, headers=headers)
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == code
        assert "WWW-Authenticate" in response
        assert entry("acme") is None
        assert not InboxEvent.objects.filter(event_id=json.loads(body)["events"][0]["id"]).exists()


@pytest.mark.usefixtures("multi_region_db")
def test_one_bad_event_fails_alone_and_blocks_only_the_rest_of_its_shard(as_region):
    poison = event("acme", 1, home="xx-nowhere-1")  # a region this registry does not know
    same_shard = next(
        k
        for k in (f"org-{i}" for i in range(1000))
        if directory_shard({"kind": "org", "key": k}) == poison["shard"]
    )
    other_shard = next(
        k
        for k in (f"org-{i}" for i in range(1000))
        if directory_shard({"kind": "org", "key": k}) != poison["shard"]
    )
    pii = event("pii", 1)
    pii["payload"]["email"] = "alice@example.com"
    batch = [poison, event(same_shard, 1), event(other_shard, 1), pii, {"id": "nope", "type": "x"}]
    with as_region("us-east-1"):
        response = post(body_of(batch))
        answered = response.json()["results"]
        assert [a["status"] for a in answered] == ["rejected", "blocked", "applied", "rejected", "rejected"]
        assert answered[0]["code"] == "unknown_region"
        assert answered[3]["code"] == "payload_not_allowed"
        assert entry(other_shard) == ("eu-west-1", 1)
        assert entry("acme") is None and entry(same_shard) is None and entry("pii") is None
        # Refused and blocked events leave no deduplication record: a retry applies them.
        assert list(InboxEvent.objects.values_list("event_id", flat=True)) == [uuid.UUID(batch[2]["id"])]


@pytest.mark.usefixtures("multi_region_db")
@pytest.mark.parametrize(
    ("envelope", "detail"),
    [
        ({"origin": "us-east-1"}, "Unknown origin"),
        ({"origin": "mars-north-1"}, "Unknown origin"),
        ({"target": "ap-south-1"}, "another region"),
    ],
)
def test_misaddressed_batches_are_refused(as_region, envelope, detail):
    body = body_of([event("acme", 1)], **envelope)
    with as_region("us-east-1"):
        response = post(body)
        assert response.status_code == 400
        assert response.json()["code"] == "replication_batch_invalid"
        assert detail in response.json()["detail"]
        assert entry("acme") is None


@pytest.mark.usefixtures("multi_region_db")
def test_malformed_json_is_a_problem_not_a_crash(as_region):
    with as_region("us-east-1"):
        response = post(b"{not json")
        assert response.status_code == 400 and response.json()["code"] == "replication_batch_invalid"
