"""Read-your-writes end to end through the REST API, with replica replay paused."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

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


@dataclass
class World:
    slug: str
    project: str
    laptop: str
    phone: str
    """Another API token of the laptop's user: their other device."""
    colleague: str


def world() -> World:
    """An organization, committed and used once, so nothing below writes but the test's POST."""
    with unit_of_work("task"):
        owner = UserFactory.create()
        org = OrganizationFactory.create(owner=owner)
        project = ProjectFactory.create(organization=org)
        membership = Membership.objects.get(organization=org, user=owner)
        laptop, phone = token_for(membership), token_for(membership)
        colleague = token_for(MembershipFactory.create(organization=org, role="member"))
    for raw in (laptop, phone, colleague):
        # First use records last_used_at, a write that would send that request to the primary.
        assert bearer(raw).get(f"/api/v1/orgs/{org.slug}/documents").status_code == 200
    return World(org.slug, str(project.pk), laptop, phone, colleague)


def laptop_writes(w: World) -> Any:
    """The laptop creates a document (with an Idempotency-Key); the 201 response."""
    created = bearer(w.laptop).post(
        f"/api/v1/orgs/{w.slug}/documents",
        {"project": w.project, "title": "fresh"},
        format="json",
        headers={"Idempotency-Key": f'"{uuid.uuid4()}"'},
    )
    assert created.status_code == 201, created.content
    return created


def test_a_document_written_through_the_api_is_read_back_by_its_writer_only(pause_replay, rate_limits_reset):
    w = world()
    pause_replay()

    created = laptop_writes(w)
    token = created.headers[tokens.HEADER]
    url = f"/api/v1/orgs/{w.slug}/documents/{created.json()['id']}"

    # The API client sends the token back.
    response = bearer(w.laptop).get(url, headers={tokens.HEADER: token})
    assert response.status_code == 200
    assert response.headers["X-Served-By-Region"] == "eu-west-1"
    # The same user on another device, with no token: the per-user token in Redis.
    assert bearer(w.phone).get(url).status_code == 200
    # A colleague reads from a replica, which has not replayed the document yet.
    assert bearer(w.colleague).get(url).status_code == 404


def test_the_per_user_token_comes_back_in_the_rate_limit_round_trip(
    pause_replay, rate_limits_reset, monkeypatch
):
    """The rate limiter reads the user's per-user token with its own script: no second Redis trip."""
    w = world()
    pause_replay()
    created = laptop_writes(w)
    url = f"/api/v1/orgs/{w.slug}/documents/{created.json()['id']}"
    asked: list[str] = []
    real = tokens.user_lsn_get

    def spy(user_id: str) -> int:
        asked.append(user_id)
        return real(user_id)

    monkeypatch.setattr(tokens, "user_lsn_get", spy)
    response = bearer(w.phone).get(url)  # the writer's other device, no token of its own
    assert response.status_code == 200  # read its write: the per-user token was honoured
    assert response.headers["RateLimit"]
    assert asked == []  # and it came with the rate limit decision
    # A colleague has no such token: the replica, which has not replayed the document.
    assert bearer(w.colleague).get(url).status_code == 404


def http(method: str, url: str, token: str, body: dict[str, str] | None = None, **headers: str):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
        request.add_header("Idempotency-Key", f'"{uuid.uuid4()}"')
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), None


@pytest.mark.slow
def test_through_gunicorn_threads_the_writer_reads_its_write_and_others_read_the_replica(
    harness, region_web, pause_replay, rate_limits_reset
):
    """The deployed shape: settings.base, a forked gunicorn worker with 4 threads, its own probe."""
    w = world()
    region_web("eu-west-1", threads=4)
    base = harness.region("eu-west-1").base_url
    pause_replay()

    status, headers, body = http(
        "POST", f"{base}/api/v1/orgs/{w.slug}/documents", w.laptop, {"project": w.project, "title": "fresh"}
    )
    assert status == 201, body
    assert headers["X-Served-By-Region"] == "eu-west-1"
    url = f"{base}/api/v1/orgs/{w.slug}/documents/{body['id']}"

    # Concurrently, from the worker's threads: the writer (header), the writer's
    # other device (Redis), and a colleague, several times each.
    calls = [(w.laptop, {tokens.HEADER: headers[tokens.HEADER]}), (w.phone, {}), (w.colleague, {})] * 4
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda call: http("GET", url, call[0], **call[1])[0], calls))
    assert statuses == [200, 200, 404] * 4
