"""Directory lookups: cached in process and in Redis, evicted everywhere when an entry changes."""

from __future__ import annotations

import pytest
from django.db import transaction

from regions.devstack.processes import wait_until
from regions.redis import region_redis
from residency.cache import CachedEntry, DirectoryCache, directory_cache, directory_cache_clear
from residency.models import DirectoryEntry
from residency.selectors import directory_lookup
from residency.services import directory_entry_apply_remote, directory_entry_upsert

ORG = DirectoryEntry.Kind.ORGANIZATION


@pytest.fixture
def clean_cache(transactional_db):
    directory_cache_clear()
    yield
    directory_cache_clear()


def redis_value(kind: str, key: str) -> str | None:
    client = region_redis()
    assert client is not None
    raw = client.get(f"{directory_cache().prefix}{kind}:{key}")
    return raw.decode() if isinstance(raw, bytes) else raw


def warm_local_cache() -> DirectoryCache:
    cache = directory_cache()
    cache.local_enabled()
    wait_until(cache.local_enabled, timeout=10, what="the invalidation subscription")
    return cache


def test_a_lookup_fills_redis_and_the_process_cache_then_needs_no_query(
    clean_cache, django_assert_num_queries
):
    directory_entry_upsert(kind=ORG, key="initech", home_region="us-east-1")
    # Writers store the committed value in Redis (write-through) ...
    assert redis_value("org", "initech") == "us-east-1|1|eu-west-1"
    directory_cache_clear()
    cache = warm_local_cache()
    # ... and a reader that misses everywhere reads the database once and fills both levels.
    with django_assert_num_queries(1):
        assert directory_lookup(kind=ORG, key="initech") == "us-east-1"
    assert redis_value("org", "initech") == "us-east-1|1|eu-west-1"
    with django_assert_num_queries(0):
        assert directory_lookup(kind=ORG, key="initech") == "us-east-1"
    assert cache.local_get("org:initech") == CachedEntry("us-east-1", 1, "eu-west-1")
    # Unknown subjects are cached too (briefly), so probing random slugs costs no query.
    with django_assert_num_queries(1):
        assert directory_lookup(kind=ORG, key="nobody") is None
    with django_assert_num_queries(0):
        assert directory_lookup(kind=ORG, key="nobody") is None


def test_a_local_write_is_visible_at_once_after_commit(clean_cache):
    warm_local_cache()
    assert directory_lookup(kind=ORG, key="hooli") is None  # cached as unknown
    directory_entry_upsert(kind=ORG, key="hooli", home_region="eu-west-1")
    assert directory_lookup(kind=ORG, key="hooli") == "eu-west-1"
    directory_entry_upsert(kind=ORG, key="hooli", home_region="us-east-1")
    assert directory_lookup(kind=ORG, key="hooli") == "us-east-1"
    assert redis_value("org", "hooli") == "us-east-1|2|eu-west-1"


def test_a_replicated_write_evicts_other_processes_through_redis(clean_cache):
    """Another process of the region (its own cache and subscription) drops its stale copy."""
    directory_entry_apply_remote(
        kind=ORG, key="umbrella", home_region="eu-west-1", version=1, origin_region="eu-west-1"
    )
    other = DirectoryCache(region="eu-west-1", redis_url=directory_cache().redis_url)
    try:
        wait_until(other.local_enabled, timeout=10, what="the other process's subscription")
        other.local_put("org:umbrella", CachedEntry("eu-west-1", 1, "eu-west-1"), generation=other.generation)
        assert other.local_get("org:umbrella") is not None
        directory_entry_apply_remote(
            kind=ORG, key="umbrella", home_region="us-east-1", version=2, origin_region="us-east-1"
        )
        wait_until(lambda: other.local_get("org:umbrella") is None, timeout=10, what="the eviction")
    finally:
        other.stop()
    assert redis_value("org", "umbrella") == "us-east-1|2|us-east-1"
    assert directory_lookup(kind=ORG, key="umbrella") == "us-east-1"


def test_a_slow_reader_cannot_put_an_older_version_back(clean_cache):
    cache = directory_cache()
    newer = CachedEntry("us-east-1", 5, "us-east-1")
    assert cache.remote_keep_newer("org:massive", newer) == newer
    older = CachedEntry("eu-west-1", 4, "eu-west-1")
    assert cache.remote_keep_newer("org:massive", older) == newer
    assert cache.remote_keep_newer("org:massive", CachedEntry(None, 0, "")) == newer
    # Equal versions: the smaller origin region wins, as in directory_entry_apply_remote.
    tie = CachedEntry("eu-west-1", 5, "eu-west-1")
    assert cache.remote_keep_newer("org:massive", tie) == tie
    assert cache.remote_keep_newer("org:massive", newer) == tie


def test_an_eviction_during_a_lookup_keeps_its_value_out_of_the_process_cache(clean_cache):
    cache = warm_local_cache()
    started = cache.generation
    cache.evict("org:raced")  # arrives while the lookup was reading Redis/the database
    cache.local_put("org:raced", CachedEntry("eu-west-1", 1, "eu-west-1"), generation=started)
    assert cache.local_get("org:raced") is None


def test_nothing_is_cached_from_inside_a_transaction(clean_cache):
    warm_local_cache()
    with transaction.atomic():
        directory_entry_upsert(kind=ORG, key="pending", home_region="us-east-1")
        assert directory_lookup(kind=ORG, key="pending") == "us-east-1"
        transaction.set_rollback(True)
    assert redis_value("org", "pending") is None
    assert directory_lookup(kind=ORG, key="pending") is None


def test_the_process_cache_is_off_while_redis_is_unreachable(clean_cache, harness):
    cache = warm_local_cache()
    directory_entry_upsert(kind=ORG, key="soylent", home_region="us-east-1")
    assert directory_lookup(kind=ORG, key="soylent") == "us-east-1"
    redis = harness.region("eu-west-1").redis
    redis.stop()
    try:
        wait_until(lambda: not cache.local_enabled(), timeout=15, what="the subscriber to notice")
        assert cache.local_get("org:soylent") is None
        # Still answered, from this region's database.
        assert directory_lookup(kind=ORG, key="soylent") == "us-east-1"
    finally:
        redis.restart()
        cache._redis_down_until = 0.0
    wait_until(cache.local_enabled, timeout=15, what="the subscription to come back")
