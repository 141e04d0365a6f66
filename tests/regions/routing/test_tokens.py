"""Causal tokens: signing, verification, and the per-user store in the region's real Redis."""

from __future__ import annotations

import uuid

import pytest
from django.test import override_settings

from regions.routing import tokens
from regions.routing.lsn import LSN_MAX


def test_a_token_round_trips_and_names_its_region():
    token = tokens.issue(0xABCDEF)
    assert token.startswith("eu-west-1.ABCDEF:")
    assert tokens.verify(token) == tokens.Verdict("valid", 0xABCDEF)
    assert tokens.verify(tokens.issue(LSN_MAX)) == tokens.Verdict("valid", LSN_MAX)
    assert tokens.verify(None) is None
    assert tokens.verify("") is None


def test_tokens_from_another_region_are_not_applied():
    with override_settings(REGION="us-east-1"):
        foreign = tokens.issue(10)
    assert tokens.verify(foreign) == tokens.Verdict("other_region")


def test_token_lifetime_covers_the_lag_limit_and_the_probe_age():
    with override_settings(ROUTING_MAX_REPLICA_LAG_SECONDS=30, ROUTING_PROBE_INTERVAL_SECONDS=1):
        assert tokens.token_ttl_seconds() == 38


def test_the_token_is_safe_in_cookies_and_headers():
    token = tokens.issue(LSN_MAX)
    assert token.isascii() and len(token) <= tokens.MAX_TOKEN_LENGTH
    assert not set(token) & set(' ;,"\\\r\n')


@pytest.mark.django_db
def test_the_per_user_lsn_only_rises(harness):
    user_id = str(uuid.uuid4())
    assert tokens.user_lsn_get(user_id) == 0
    tokens.user_lsn_raise(user_id, 0x200)
    tokens.user_lsn_raise(user_id, 0x100)  # a slower device must not lower it
    assert tokens.user_lsn_get(user_id) == 0x200
    tokens.user_lsn_raise(user_id, 0x1_0000_0000)
    assert tokens.user_lsn_get(user_id) == 0x1_0000_0000
    ttl = harness.region("eu-west-1").redis.client(0).ttl(f"routing:causal:user:{user_id}")
    assert 0 < ttl <= tokens.token_ttl_seconds()


@pytest.mark.django_db
def test_a_redis_outage_is_reported_not_guessed(harness):
    redis = harness.region("eu-west-1").redis
    redis.stop()
    try:
        with pytest.raises(tokens.TokenStoreUnavailable):
            tokens.user_lsn_get(str(uuid.uuid4()))
        tokens.user_lsn_raise(str(uuid.uuid4()), 5)  # best effort: logged, never raised
    finally:
        redis.restart()
