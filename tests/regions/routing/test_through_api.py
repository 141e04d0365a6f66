"""Read-your-writes end to end through the REST API, with replica replay paused."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from regions.routing import tokens, unit_of_work
from saas.models import Membership
from tests.saas.factories import (
    MembershipFactory,
    OrganizationFactory,
    ProjectFactory,
    UserFactory,
    token_for,
)

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_a_document_written_through_the_api_is_read_back_by_its_writer_only(pause_replay, rate_limits_reset):
    with unit_of_work("task"):  # setup, committed, and replayed before the pause
        owner = UserFactory.create()
        org = OrganizationFactory.create(owner=owner)
        project = ProjectFactory.create(organization=org)
        membership = Membership.objects.get(organization=org, user=owner)
        laptop, phone = token_for(membership), token_for(membership)  # two devices of one user
        colleague = token_for(MembershipFactory.create(organization=org, role="member"))
    for raw in (laptop, phone, colleague):
        # First use records last_used_at, a write that would send that request to the primary.
        assert bearer(raw).get(f"/api/v1/orgs/{org.slug}/documents").status_code == 200
    pause_replay()

    created = bearer(laptop).post(
        f"/api/v1/orgs/{org.slug}/documents",
        {"project": str(project.pk), "title": "fresh"},
        format="json",
        headers={"Idempotency-Key": f'"{uuid.uuid4()}"'},
    )
    assert created.status_code == 201, created.content
    token = created.headers[tokens.HEADER]
    url = f"/api/v1/orgs/{org.slug}/documents/{created.json()['id']}"

    # The API client sends the token back.
    response = bearer(laptop).get(url, headers={tokens.HEADER: token})
    assert response.status_code == 200
    assert response.headers["X-Served-By-Region"] == "eu-west-1"
    # The same user on another device, with no token: the per-user token in Redis.
    assert bearer(phone).get(url).status_code == 200
    # A colleague reads from a replica, which has not replayed the document yet.
    assert bearer(colleague).get(url).status_code == 404
