"""The directory's writers: local upserts bump versions; remote applies converge."""

from __future__ import annotations

import pytest

from residency.login_keys import login_key, normalize_email
from residency.models import DirectoryEntry
from residency.selectors import directory_home_region
from residency.services import directory_entry_apply_remote, directory_entry_upsert

ORG = DirectoryEntry.Kind.ORGANIZATION


@pytest.mark.django_db
def test_upsert_creates_then_bumps_the_version():
    first = directory_entry_upsert(kind=ORG, key="acme", home_region="eu-west-1")
    assert (first.version, first.home_region, first.origin_region) == (1, "eu-west-1", "eu-west-1")
    moved = directory_entry_upsert(kind=ORG, key="acme", home_region="eu-central-1")
    assert (moved.version, moved.home_region) == (2, "eu-central-1")
    assert directory_home_region(kind=ORG, key="acme") == "eu-central-1"
    assert directory_home_region(kind=ORG, key="nobody") is None


@pytest.mark.django_db
def test_remote_apply_ignores_older_versions_and_is_idempotent():
    assert directory_entry_apply_remote(
        kind=ORG, key="globex", home_region="us-east-1", version=3, origin_region="us-east-1"
    )
    assert not directory_entry_apply_remote(
        kind=ORG, key="globex", home_region="us-east-1", version=3, origin_region="us-east-1"
    )
    assert not directory_entry_apply_remote(
        kind=ORG, key="globex", home_region="eu-west-1", version=2, origin_region="eu-west-1"
    )
    assert directory_home_region(kind=ORG, key="globex") == "us-east-1"
    assert directory_entry_apply_remote(
        kind=ORG, key="globex", home_region="eu-west-1", version=4, origin_region="eu-west-1"
    )
    assert directory_home_region(kind=ORG, key="globex") == "eu-west-1"


@pytest.mark.django_db
@pytest.mark.parametrize("order", [("eu-west-1", "us-east-1"), ("us-east-1", "eu-west-1")])
def test_equal_versions_from_two_regions_converge_on_the_same_winner(order):
    for origin in order:
        directory_entry_apply_remote(
            kind=ORG, key="race", home_region=origin, version=1, origin_region=origin
        )
    assert directory_home_region(kind=ORG, key="race") == "eu-west-1"


def test_login_key_is_a_keyed_hash_of_the_normalized_email(settings):
    settings.DIRECTORY_SECRET = "k1"
    key = login_key("  Alice@Example.COM ")
    assert key == login_key("alice@example.com")
    assert len(key) == 64 and "alice" not in key
    settings.DIRECTORY_SECRET = "k2"
    assert login_key("alice@example.com") != key
    assert normalize_email(" \uff22ob@Example.com") == "bob@example.com"  # fullwidth B


@pytest.mark.django_db
def test_batch_remote_apply_follows_the_same_version_rule():
    from residency.services import RemoteEntry, directory_entries_apply_remote

    directory_entry_apply_remote(
        kind=ORG, key="old", home_region="eu-west-1", version=5, origin_region="eu-west-1"
    )
    directory_entry_apply_remote(
        kind=ORG, key="tie", home_region="us-east-1", version=2, origin_region="us-east-1"
    )
    batch = [
        RemoteEntry("org", "new", "us-east-1", 1, "us-east-1"),  # unknown here: created
        RemoteEntry("org", "old", "us-east-1", 4, "us-east-1"),  # older: ignored
        RemoteEntry("org", "tie", "eu-west-1", 2, "eu-west-1"),  # equal, smaller origin: wins
        RemoteEntry("org", "twice", "eu-west-1", 1, "eu-west-1"),
        RemoteEntry("org", "twice", "us-east-1", 3, "us-east-1"),  # the same key twice: the newest only
    ]
    changed = directory_entries_apply_remote(entries=batch)
    assert changed == {batch[0], batch[2], batch[4]}
    assert directory_home_region(kind=ORG, key="new") == "us-east-1"
    assert directory_home_region(kind=ORG, key="old") == "eu-west-1"
    assert directory_home_region(kind=ORG, key="tie") == "eu-west-1"
    assert DirectoryEntry.objects.get(kind=ORG, key="twice").version == 3
    assert directory_entries_apply_remote(entries=batch) == set()  # idempotent


@pytest.mark.django_db
def test_batch_remote_apply_refreshes_the_directory_cache_after_commit(django_capture_on_commit_callbacks):
    from residency.cache import directory_cache
    from residency.services import RemoteEntry, directory_entries_apply_remote

    cache = directory_cache()
    with django_capture_on_commit_callbacks(execute=True):
        directory_entries_apply_remote(entries=[RemoteEntry("org", "cached", "us-east-1", 7, "us-east-1")])
    kept = cache.remote_get(cache.entry_id("org", "cached"))
    assert kept is not None and (kept.home_region, kept.version) == ("us-east-1", 7)
