"""Model declarations the residency machinery relies on."""

from __future__ import annotations

import pytest
from django.apps import apps

from residency.pii import personal_data_in
from saas.models import ApiToken, Document, Membership, Organization, Project, User

NAME = "Grace Hopper"
EMAIL = "grace.hopper@navy.example"


@pytest.mark.django_db
def test_no_model_renders_personal_data_in_its_str():
    """The admin's operator log (admin.logentry, operational) stores __str__ reprs."""
    user = User.objects.create(email=EMAIL, name=NAME, home_region="eu-west-1")
    org = Organization.objects.create(slug="navy", name=NAME, home_region="eu-west-1", zone="EU")
    membership = Membership.objects.create(organization=org, user=user, home_region="eu-west-1")
    project = Project.objects.create(organization=org, name=NAME, home_region="eu-west-1")
    document = Document.objects.create(
        organization=org, project=project, title=NAME, body=EMAIL, created_by=user, home_region="eu-west-1"
    )
    token = ApiToken.objects.create(
        organization=org, user=user, name=NAME, prefix="sk_x", token_hash="0" * 64, home_region="eu-west-1"
    )
    for obj in (user, org, membership, project, document, token):
        text = str(obj)
        assert NAME not in text and personal_data_in(text) == {}, (type(obj).__name__, text)


def test_every_concrete_model_is_classified():
    from regions.placement import placement_of

    unclassified = [
        m._meta.label for m in apps.get_models() if not m._meta.auto_created and placement_of(m) is None
    ]
    assert unclassified == []
