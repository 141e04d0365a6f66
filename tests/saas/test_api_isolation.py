"""Tenant isolation: every org-scoped endpoint, two organizations, each role.

- another organization's objects answer 404 (never 403), for every role and both
  kinds of credentials;
- in its own organization each role gets exactly what ``saas.policy`` allows
  (403 otherwise);
- an id of another organization under one's own slug is 404 too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from saas.models import ApiToken, Document, Membership, Project
from tests.saas.conftest import ROLES, Org
from tests.saas.factories import PASSWORD, UserFactory


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: Callable[[Org], str]
    allowed: frozenset[str]
    status: int
    body: Callable[[Org], dict[str, Any]] | None = None
    denied_status: int = 403


ALL = frozenset(ROLES)
MANAGERS = frozenset({"owner", "admin"})


def org(w: Org) -> str:
    return f"/api/v1/orgs/{w.slug}"


CASES = [
    Case("org read", "get", org, ALL, 200),
    Case("org update", "patch", org, MANAGERS, 200, lambda w: {"name": "Renamed"}),
    Case("org delete", "delete", org, frozenset({"owner"}), 204),
    Case("members list", "get", lambda w: f"{org(w)}/members", ALL, 200),
    Case(
        "member invite",
        "post",
        lambda w: f"{org(w)}/members",
        MANAGERS,
        201,
        lambda w: {"email": UserFactory.create().email, "role": "member"},
    ),
    Case("member read", "get", lambda w: f"{org(w)}/members/{w.members['member'].pk}", ALL, 200),
    Case(
        "member role change",
        "patch",
        lambda w: f"{org(w)}/members/{w.extra['spare'].pk}",
        MANAGERS,
        200,
        lambda w: {"role": "admin"},
    ),
    Case("member remove", "delete", lambda w: f"{org(w)}/members/{w.extra['spare'].pk}", MANAGERS, 204),
    Case("projects list", "get", lambda w: f"{org(w)}/projects", ALL, 200),
    Case("project create", "post", lambda w: f"{org(w)}/projects", MANAGERS, 201, lambda w: {"name": "P"}),
    Case("project read", "get", lambda w: f"{org(w)}/projects/{w.project.pk}", ALL, 200),
    Case(
        "project update",
        "patch",
        lambda w: f"{org(w)}/projects/{w.project.pk}",
        MANAGERS,
        200,
        lambda w: {"name": "Q"},
    ),
    Case("project delete", "delete", lambda w: f"{org(w)}/projects/{w.project.pk}", MANAGERS, 204),
    Case("documents list", "get", lambda w: f"{org(w)}/documents", ALL, 200),
    Case(
        "document create",
        "post",
        lambda w: f"{org(w)}/documents",
        ALL,
        201,
        lambda w: {"project": str(w.project.pk), "title": "T", "body": "text"},
    ),
    Case("document read", "get", lambda w: f"{org(w)}/documents/{w.document.pk}", ALL, 200),
    Case(
        "document update",
        "patch",
        lambda w: f"{org(w)}/documents/{w.document.pk}",
        ALL,
        200,
        lambda w: {"title": "New title"},
    ),
    Case("document delete", "delete", lambda w: f"{org(w)}/documents/{w.document.pk}", MANAGERS, 204),
    Case("tokens list", "get", lambda w: f"{org(w)}/tokens", ALL, 200),
    # A member cannot see another member's token at all: 404, not 403.
    Case(
        "token revoke",
        "delete",
        lambda w: f"{org(w)}/tokens/{w.extra['spare_token'].pk}",
        MANAGERS,
        204,
        denied_status=404,
    ),
]


def call(client: APIClient, case: Case, target: Org) -> Any:
    body = case.body(target) if case.body else None
    return getattr(client, case.method)(case.path(target), body, format="json")


def session_client(membership: Membership) -> APIClient:
    client = APIClient(enforce_csrf_checks=False)
    assert client.login(email=membership.user.email, password=PASSWORD)
    return client


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_role_gets_exactly_what_the_policy_allows_in_its_own_org(acme, globex, case, role):
    response = call(acme.client(role), case, acme)
    expected = case.status if role in case.allowed else case.denied_status
    assert response.status_code == expected, response.content
    if expected >= 400:
        assert response["Content-Type"] == "application/problem+json"
    # Nothing of the other organization changed.
    assert Project.objects.filter(pk=globex.project.pk, name=globex.project.name).exists()
    assert Document.objects.filter(pk=globex.document.pk, title=globex.document.title).exists()


@pytest.mark.parametrize("auth", ["token", "session"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_another_orgs_objects_answer_404_for_every_role(acme, globex, case, role, auth):
    client = acme.client(role) if auth == "token" else session_client(acme.members[role])
    response = call(client, case, globex)
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "not_found"
    globex.org.refresh_from_db()
    assert globex.org.name != "Renamed"
    assert Project.objects.filter(pk=globex.project.pk).exists()
    assert Document.objects.filter(pk=globex.document.pk, title=globex.document.title).exists()
    assert Membership.objects.filter(pk=globex.extra["spare"].pk, role="member").exists()
    assert ApiToken.objects.filter(pk=globex.extra["spare_token"].pk, revoked_at__isnull=True).exists()


@pytest.mark.parametrize(
    "path",
    [
        lambda a, g: f"/api/v1/orgs/{a.slug}/projects/{g.project.pk}",
        lambda a, g: f"/api/v1/orgs/{a.slug}/documents/{g.document.pk}",
        lambda a, g: f"/api/v1/orgs/{a.slug}/members/{g.members['member'].pk}",
        lambda a, g: f"/api/v1/orgs/{a.slug}/tokens/{g.extra['spare_token'].pk}",
    ],
    ids=["project", "document", "member", "token"],
)
def test_another_orgs_id_under_ones_own_slug_is_404(acme, globex, path):
    for method in ("get", "patch", "delete"):
        response = getattr(acme.client("owner"), method)(path(acme, globex), {}, format="json")
        assert response.status_code in {404, 405}, (method, response.content)
        if response.status_code == 404:
            assert response.json()["code"] == "not_found"


def test_document_create_refuses_another_orgs_project(acme, globex):
    response = acme.client("member").post(
        f"/api/v1/orgs/{acme.slug}/documents",
        {"project": str(globex.project.pk), "title": "x"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "project"
    assert not Document.objects.filter(project=globex.project, title="x").exists()


def test_org_list_shows_only_ones_own_organizations(acme, globex):
    session = session_client(acme.members["member"])
    slugs = [o["slug"] for o in session.get("/api/v1/orgs").json()["results"]]
    assert slugs == [acme.slug]
    token = acme.client("admin").get("/api/v1/orgs").json()["results"]
    assert [o["slug"] for o in token] == [acme.slug]


def test_a_token_sees_only_its_own_organization_even_if_its_user_belongs_to_more(acme, globex):
    from saas.services import membership_invite

    membership_invite(actor=globex.members["owner"], email=acme.members["member"].user.email)
    client = acme.client("member")
    assert client.get(f"/api/v1/orgs/{globex.slug}").status_code == 404
    assert [o["slug"] for o in client.get("/api/v1/orgs").json()["results"]] == [acme.slug]
    assert session_client(acme.members["member"]).get(f"/api/v1/orgs/{globex.slug}").status_code == 200


def test_users_see_only_themselves(acme, globex):
    me = acme.members["member"].user
    client = acme.client("member")
    assert client.get(f"/api/v1/users/{me.pk}").json()["email"] == me.email
    other = globex.members["member"].user
    assert client.get(f"/api/v1/users/{other.pk}").status_code == 404
    assert client.patch(f"/api/v1/users/{other.pk}", {"name": "x"}, format="json").status_code == 404
    colleague = acme.members["owner"].user
    assert client.get(f"/api/v1/users/{colleague.pk}").status_code == 404


def test_anonymous_requests_get_401_with_a_challenge(acme):
    response = APIClient().get(f"/api/v1/orgs/{acme.slug}")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "not_authenticated"


def test_revoked_and_unknown_tokens_are_refused(acme):
    client = acme.client("admin")
    ApiToken.objects.filter(user=acme.members["admin"].user).update(revoked_at="2020-01-01T00:00:00Z")
    response = client.get(f"/api/v1/orgs/{acme.slug}")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Bearer sk_eu-west-1_" + "A" * 40)
    assert forged.get("/api/v1/me").status_code == 401
