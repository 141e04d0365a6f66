"""The inter-region HTTP client against a real peer (us-east-1's gunicorn): signed, traced."""

from __future__ import annotations

import json

import pytest

from regions.replication.client import APPLY_PATH, encode_batch, signed_post
from regions.request_context import request_id_var

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def test_the_callers_request_id_reaches_the_peers_log_line(region_web):
    web = region_web("us-east-1")
    request_id = "trace-client-0001-abcdef"
    token = request_id_var.set(request_id)
    try:
        answer = signed_post(
            peer="us-east-1", path=APPLY_PATH, body=encode_batch(target="us-east-1", events=[])
        )
    finally:
        request_id_var.reset(token)
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Request-ID"] == request_id
    lines = [json.loads(line) for line in web.log_path.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "regions.access"]
    assert [(line["route"], line.get("request_id")) for line in access] == [
        (APPLY_PATH.lstrip("/"), request_id)
    ], lines


def test_without_a_request_the_client_sends_a_fresh_id_per_call(region_web):
    region_web("us-east-1")
    body = encode_batch(target="us-east-1", events=[])
    first = signed_post(peer="us-east-1", path=APPLY_PATH, body=body)
    second = signed_post(peer="us-east-1", path=APPLY_PATH, body=body)
    assert first.status_code == second.status_code == 200
    ids = {first.headers["X-Request-ID"], second.headers["X-Request-ID"]}
    assert len(ids) == 2 and all(len(i) == 32 for i in ids)
