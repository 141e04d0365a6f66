"""A two-organization world for the API tests, and clean rate limit buckets per test."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from rest_framework.test import APIClient

from saas import services
from saas.models import Membership, Organization, Project
from tests.saas.factories import (
    DocumentFactory,
    MembershipFactory,
    OrganizationFactory,
    ProjectFactory,
    UserFactory,
    token_for,
)

ROLES = ("owner", "admin", "member")


@pytest.fixture(autouse=True)
def _fresh_rate_limits(rate_limits_reset: None) -> None:
    """Every API test starts with full rate limit buckets."""


@dataclass
class Org:
    org: Organization
    members: dict[str, Membership]
    tokens: dict[str, str]
    project: Project
    document: Any
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.org.slug

    def client(self, role: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.tokens[role]}")
        return client


def build_org() -> Org:
    owner = UserFactory.create()
    org = OrganizationFactory.create(owner=owner)
    members = {"owner": Membership.objects.get(organization=org, user=owner)}
    for role in ("admin", "member"):
        members[role] = MembershipFactory.create(organization=org, role=role)
    project = ProjectFactory.create(organization=org)
    document = DocumentFactory.create(project=project)
    spare = MembershipFactory.create(organization=org, role="member")
    spare_token, _ = services.api_token_create(actor=spare, name="spare")
    return Org(
        org=org,
        members=members,
        tokens={role: token_for(membership) for role, membership in members.items()},
        project=project,
        document=document,
        extra={"spare": spare, "spare_token": spare_token},
    )


@pytest.fixture
def acme(db: None) -> Org:
    return build_org()


@pytest.fixture
def globex(db: None) -> Org:
    return build_org()
