"""Signed inter-region requests: rotation, tampering, stale timestamps, reused nonces."""

from __future__ import annotations

import time

import pytest

from regions.errors import NonceReused, SignatureInvalid, SignatureStale
from regions.signing import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_request, verify_request

KEYS = ["new-key-0123456789abcdef0123456789", "old-key-0123456789abcdef0123456789"]
BODY = b'{"events": []}'


def verify(headers, *, keys=KEYS, body=BODY, method="POST", path="/internal/x", now=None):
    return verify_request(
        method=method, path=path, body=body, headers=headers, keys=keys, max_age=60, namespace="t", now=now
    )


@pytest.mark.django_db
def test_signed_request_verifies_once_and_reports_the_key_used():
    headers = sign_request(method="POST", path="/internal/x", body=BODY, keys=KEYS)
    assert verify(headers).key_index == 0
    with pytest.raises(NonceReused):
        verify(headers)
    # A sender still on the old key (mid-rotation) is accepted, and seen as such.
    old = sign_request(method="POST", path="/internal/x", body=BODY, keys=KEYS[1:])
    assert verify(old).key_index == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        {"body": b'{"events": [1]}'},
        {"path": "/internal/y"},
        {"method": "PUT"},
        {"keys": ["some-other-key-0123456789abcdef012"]},
    ],
    ids=["body", "path", "method", "unknown-key"],
)
def test_any_change_to_a_signed_part_fails(change):
    headers = sign_request(method="POST", path="/internal/x", body=BODY, keys=KEYS)
    with pytest.raises(SignatureInvalid) as caught:
        verify(headers, **change)
    assert caught.value.code == "signature_invalid" and caught.value.status == 401


@pytest.mark.django_db
def test_stale_and_future_timestamps_fail_before_the_nonce_is_spent():
    old = sign_request(
        method="POST", path="/internal/x", body=BODY, keys=KEYS, timestamp=int(time.time()) - 61
    )
    with pytest.raises(SignatureStale):
        verify(old)
    future = sign_request(
        method="POST", path="/internal/x", body=BODY, keys=KEYS, timestamp=int(time.time()) + 61
    )
    with pytest.raises(SignatureStale):
        verify(future)
    # The same nonce with a fresh timestamp was never recorded by the refused attempts.
    fresh = sign_request(method="POST", path="/internal/x", body=BODY, keys=KEYS, nonce=old[NONCE_HEADER])
    assert verify(fresh).nonce == old[NONCE_HEADER]


@pytest.mark.django_db
def test_a_forged_signature_does_not_burn_the_nonce():
    headers = sign_request(method="POST", path="/internal/x", body=BODY, keys=KEYS)
    forged = {**headers, SIGNATURE_HEADER: "sha256=" + "0" * 64}
    with pytest.raises(SignatureInvalid):
        verify(forged)
    assert verify(headers).nonce == headers[NONCE_HEADER]


@pytest.mark.parametrize(
    "headers",
    [{}, {TIMESTAMP_HEADER: "abc", NONCE_HEADER: "n" * 20, SIGNATURE_HEADER: "sha256=00"}],
    ids=["missing", "malformed"],
)
def test_missing_or_malformed_headers_fail(headers):
    with pytest.raises(SignatureInvalid):
        verify(headers)
