"""Services: directory writes in the same transaction, the last-owner rule, no cross-region membership."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction

from regions.errors import PermissionDenied
from residency.login_keys import login_key
from residency.models import DirectoryEntry
from saas import services
from saas.errors import AlreadyMember, CrossRegionMembership, LastOwner, UserNotFound
from saas.models import Membership, Organization, User
from tests.saas.conftest import build_org
from tests.saas.factories import MembershipFactory, OrganizationFactory, UserFactory


def test_user_create_normalizes_the_email_and_writes_both_directory_entries(db):
    user = services.user_create(email="  Ada@Example.Test ", password="correct-horse-battery-staple-1")
    assert user.email == "ada@example.test" and user.home_region == "eu-west-1"
    assert DirectoryEntry.objects.get(kind="user", key=str(user.pk)).home_region == "eu-west-1"
    assert DirectoryEntry.objects.get(kind="login", key=login_key("ada@example.test")).version == 1


def test_directory_entries_roll_back_with_the_user(db):
    with pytest.raises(RuntimeError), transaction.atomic():
        user = services.user_create(email="gone@example.test", password="correct-horse-battery-staple-1")
        raise RuntimeError("the caller's transaction fails")
    assert not User.objects.filter(email="gone@example.test").exists()
    assert not DirectoryEntry.objects.filter(key__in=[str(user.pk), login_key("gone@example.test")]).exists()


def test_organization_create_writes_its_slug_to_the_directory(db):
    org = OrganizationFactory.create(slug="acme-corp")
    entry = DirectoryEntry.objects.get(kind="org", key="acme-corp")
    assert (entry.home_region, org.zone, org.home_region) == ("eu-west-1", "EU", "eu-west-1")


def test_an_owner_homed_elsewhere_cannot_create_an_organization_here(db):
    # As a row of us-east-1 would look; the write guard keeps it out of this region's tables.
    user = User(email="far@example.test", home_region="us-east-1")
    with pytest.raises(CrossRegionMembership):
        services.organization_create(name="X", slug="x-corp", owner=user)
    assert not Organization.objects.filter(slug="x-corp").exists()


def test_inviting_a_user_of_another_region_is_refused_with_a_stable_code(acme):
    DirectoryEntry.objects.create(
        kind="login",
        key=login_key("far@example.test"),
        home_region="us-east-1",
        version=1,
        origin_region="us-east-1",
    )
    with pytest.raises(CrossRegionMembership) as error:
        services.membership_invite(actor=acme.members["owner"], email="Far@Example.test")
    assert error.value.code == "cross_region_membership" and error.value.status == 409
    with pytest.raises(UserNotFound):
        services.membership_invite(actor=acme.members["owner"], email="nobody@example.test")
    with pytest.raises(AlreadyMember):
        services.membership_invite(actor=acme.members["owner"], email=acme.members["member"].user.email)


def test_only_owners_grant_or_take_the_owner_role(acme):
    admin, member = acme.members["admin"], acme.members["member"]
    with pytest.raises(PermissionDenied):
        services.membership_change_role(actor=admin, membership=member, role="owner")
    with pytest.raises(PermissionDenied):
        services.membership_remove(actor=admin, membership=acme.members["owner"])
    with pytest.raises(PermissionDenied):
        services.membership_invite(actor=admin, email=UserFactory.create().email, role="owner")
    services.membership_change_role(actor=acme.members["owner"], membership=member, role="owner")
    assert Membership.objects.get(pk=member.pk).role == "owner"


def test_the_last_owner_can_be_neither_removed_nor_demoted_nor_leave(acme):
    owner = acme.members["owner"]
    for attempt in (
        lambda: services.membership_remove(actor=owner, membership=owner),
        lambda: services.membership_change_role(actor=owner, membership=owner, role="admin"),
    ):
        with pytest.raises(LastOwner):
            attempt()
    assert Membership.objects.get(pk=owner.pk).role == "owner"
    # With a second owner, the first may leave.
    services.membership_change_role(actor=owner, membership=acme.members["admin"], role="owner")
    services.membership_remove(actor=owner, membership=owner)
    assert not Membership.objects.filter(pk=owner.pk).exists()


def test_any_member_may_leave(acme):
    member = acme.members["member"]
    services.membership_remove(actor=member, membership=member)
    assert not Membership.objects.filter(pk=member.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner(rate_limits_reset):
    world = build_org()
    first = world.members["owner"]
    second = MembershipFactory.create(organization=world.org, role="owner")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def demote(actor: Membership, target: Membership) -> None:
        try:
            barrier.wait(timeout=30)
            services.membership_change_role(actor=actor, membership=target, role="member")
            outcomes.append("demoted")
        except LastOwner:
            outcomes.append("last_owner")
        finally:
            for conn in connections.all():
                conn.close()

    threads = [
        threading.Thread(target=demote, args=(first, second)),
        threading.Thread(target=demote, args=(second, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["demoted", "last_owner"]
    assert Membership.objects.filter(organization=world.org, role="owner").count() == 1
