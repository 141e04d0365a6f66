"""Operators inspect the directory, violation events and replication inbox; they never edit them."""

from __future__ import annotations

import pytest

from residency.models import DirectoryEntry
from saas.models import User


@pytest.fixture
def operator(db):
    return User.objects.create(
        email="ops@eu.example", home_region="eu-west-1", is_staff=True, is_superuser=True
    )


@pytest.mark.parametrize(
    "path",
    ["residency/directoryentry", "residency/violationevent", "regions/inboxevent", "residency/auditrun"],
)
def test_read_only_changelists_render_and_refuse_adds(client, operator, path):
    client.force_login(operator)
    listing = client.get(f"/admin/{path}/", {"q": "acme"})
    assert listing.status_code == 200
    assert client.get(f"/admin/{path}/add/").status_code == 403


def test_directory_entry_cannot_be_edited_or_deleted_in_the_admin(client, operator):
    entry = DirectoryEntry.objects.create(
        kind="org", key="acme", home_region="eu-west-1", version=1, origin_region="eu-west-1"
    )
    client.force_login(operator)
    change = client.post(f"/admin/residency/directoryentry/{entry.pk}/change/", {"home_region": "us-east-1"})
    assert change.status_code == 403
    delete = client.post(f"/admin/residency/directoryentry/{entry.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    entry.refresh_from_db()
    assert entry.home_region == "eu-west-1"
