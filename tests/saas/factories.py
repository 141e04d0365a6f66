"""factory_boy factories. Users, organizations and tokens go through the services (directory included)."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from factory.declarations import LazyFunction, SelfAttribute, Sequence, SubFactory
from factory.django import DjangoModelFactory
from factory.faker import Faker

from saas import services
from saas.models import ApiToken, Document, Membership, Organization, Project, User

PASSWORD = "correct-horse-battery-staple-42"


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User

    email = Sequence(lambda n: f"user{n}-{uuid.uuid4().hex[:8]}@example.test")
    name = Faker("name")

    @classmethod
    def _create(cls, model_class: type[User], *args: Any, **kwargs: Any) -> User:
        password = kwargs.pop("password", PASSWORD)
        staff = kwargs.pop("is_staff", False)
        user = services.user_create(email=kwargs["email"], password=password, name=kwargs.get("name", ""))
        if staff:
            user.is_staff = True
            user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
        return user


class OrganizationFactory(DjangoModelFactory[Organization]):
    class Meta:
        model = Organization

    name = Faker("company")
    slug = Sequence(lambda n: f"org-{n}-{uuid.uuid4().hex[:8]}")
    owner = SubFactory(UserFactory)

    @classmethod
    def _create(cls, model_class: type[Organization], *args: Any, **kwargs: Any) -> Organization:
        return services.organization_create(name=kwargs["name"], slug=kwargs["slug"], owner=kwargs["owner"])


class MembershipFactory(DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    organization = SubFactory(OrganizationFactory)
    user = SubFactory(UserFactory)
    role = Membership.Role.MEMBER
    home_region = LazyFunction(lambda: settings.REGION)


class ProjectFactory(DjangoModelFactory[Project]):
    class Meta:
        model = Project

    organization = SubFactory(OrganizationFactory)
    name = Sequence(lambda n: f"project {n}")
    home_region = SelfAttribute("organization.home_region")


class DocumentFactory(DjangoModelFactory[Document]):
    class Meta:
        model = Document

    project = SubFactory(ProjectFactory)
    organization = SelfAttribute("project.organization")
    title = Sequence(lambda n: f"document {n}")
    body = Faker("paragraph")
    home_region = SelfAttribute("organization.home_region")


def token_for(membership: Membership, *, tier: str = ApiToken.Tier.STANDARD) -> str:
    """Issue a token through the service; returns the raw token."""
    token, new = services.api_token_create(actor=membership, name="test")
    if tier != token.tier:
        ApiToken.objects.filter(pk=token.pk).update(tier=tier)
    return new.raw
