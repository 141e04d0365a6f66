"""Signup in a zone or region, session login, API tokens, /me."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from regions.selectors import get_registry
from residency.login_keys import login_key
from residency.models import DirectoryEntry
from saas.models import ApiToken, Membership, Organization, User
from saas.tokens import token_hash, token_home_region
from tests.saas.factories import PASSWORD, UserFactory

SIGNUP = "/api/v1/signup"


def signup(**body):
    payload = {"email": "Ada@Example.TEST", "password": PASSWORD, "name": "Ada", **body}
    return APIClient().post(SIGNUP, payload, format="json")


@pytest.mark.parametrize("choice", [{"zone": "EU"}, {"region": "eu-west-1"}])
def test_signup_in_this_regions_zone_creates_the_user_and_directory_entries(db, choice):
    response = signup(**choice, organization_slug="analytical", organization_name="Analytical Engines")
    assert response.status_code == 201, response.content
    body = response.json()
    user = User.objects.get(pk=body["user"]["id"])
    assert response["Location"] == f"/api/v1/users/{user.pk}"
    assert (user.email, user.home_region) == ("ada@example.test", "eu-west-1")
    assert user.check_password(PASSWORD)
    assert "password" not in body["user"]
    entries = dict(DirectoryEntry.objects.values_list("kind", "key").filter(home_region="eu-west-1"))
    assert DirectoryEntry.objects.filter(kind="user", key=str(user.pk), home_region="eu-west-1").exists()
    assert DirectoryEntry.objects.filter(kind="login", key=login_key("ada@example.test")).exists()
    assert entries  # no email in clear in the directory
    assert not DirectoryEntry.objects.filter(key__icontains="@").exists()
    assert not DirectoryEntry.objects.filter(key__icontains="example.test").exists()
    org = Organization.objects.get(slug="analytical")
    assert (org.zone, org.home_region, body["organization"]["slug"]) == ("EU", "eu-west-1", "analytical")
    assert Membership.objects.get(organization=org, user=user).role == "owner"


@pytest.mark.parametrize(
    ("choice", "target"), [({"zone": "US"}, "us-east-1"), ({"region": "eu-central-1"}, "eu-central-1")]
)
def test_signup_for_another_region_is_a_307_to_the_registry_host(db, choice, target):
    response = APIClient().post(
        SIGNUP,
        {"email": "grace@example.test", "password": PASSWORD, **choice},
        format="json",
        HTTP_X_FORWARDED_HOST="evil.example",
    )
    assert response.status_code == 307
    expected = get_registry().region(target).public_link("/api/v1/signup")
    assert response["Location"] == expected
    body = response.json()
    assert (body["code"], body["region"], body["location"]) == ("wrong_region", target, expected)
    assert not User.objects.exists() and not DirectoryEntry.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"zone": "MARS"}, "zone"),
        ({"region": "moon-1"}, "region"),
        ({}, "zone"),
        ({"zone": "EU", "region": "eu-west-1"}, "zone"),
        ({"zone": "EU", "password": "123"}, "password"),
        ({"zone": "EU", "email": "not-an-email"}, "email"),
    ],
)
def test_signup_validation_names_the_field(db, body, field):
    response = signup(**body)
    assert response.status_code == 400
    assert field in {e["field"] for e in response.json()["errors"]}
    assert not User.objects.exists()


def test_signup_with_a_taken_email_or_slug_is_409_and_leaves_nothing_behind(db):
    assert signup(zone="EU").status_code == 201
    again = signup(zone="EU", email="ADA@example.test")
    assert again.status_code == 409 and again.json()["code"] == "email_taken"
    # An org slug registered by another region (replicated directory): taken here too.
    DirectoryEntry.objects.create(
        kind="org", key="taken", home_region="us-east-1", version=1, origin_region="us-east-1"
    )
    response = signup(zone="EU", email="bob@example.test", organization_slug="taken")
    assert response.status_code == 409 and response.json()["code"] == "slug_taken"
    # The user of the failed signup was rolled back with its directory entries.
    assert not User.objects.filter(email="bob@example.test").exists()
    assert not DirectoryEntry.objects.filter(kind="login", key=login_key("bob@example.test")).exists()


def test_an_email_homed_in_another_region_is_taken_here_too(db):
    DirectoryEntry.objects.create(
        kind="login",
        key=login_key("zoe@example.test"),
        home_region="us-east-1",
        version=1,
        origin_region="us-east-1",
    )
    response = signup(zone="EU", email="Zoe@example.test")
    assert response.status_code == 409 and response.json()["code"] == "email_taken"


def test_session_login_me_and_logout(db):
    user = UserFactory.create()
    client = APIClient()
    wrong = client.post("/api/v1/auth/login", {"email": user.email, "password": "nope"}, format="json")
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_credentials"
    ok = client.post("/api/v1/auth/login", {"email": user.email.upper(), "password": PASSWORD}, format="json")
    assert ok.status_code == 200 and ok.json()["id"] == str(user.pk)
    assert "sessionid-eu-west-1" in client.cookies
    me = client.get("/api/v1/me")
    assert me.json()["user"]["email"] == user.email and me.json()["memberships"] == []
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert client.get("/api/v1/me").status_code == 401


def test_token_issue_use_list_and_revoke(acme):
    member = acme.members["member"]
    client = APIClient()
    response = client.post(
        "/api/v1/auth/token",
        {"email": member.user.email, "password": PASSWORD, "organization": acme.slug, "name": "ci"},
        format="json",
    )
    assert response.status_code == 201, response.content
    raw = response.json()["token"]
    assert token_home_region(raw) == "eu-west-1"
    stored = ApiToken.objects.get(pk=response.json()["id"])
    assert stored.token_hash == token_hash(raw) and raw not in (stored.prefix, stored.token_hash)
    assert raw.startswith(stored.prefix) and stored.tier == "standard"
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    me = client.get("/api/v1/me").json()
    assert [m["organization"]["slug"] for m in me["memberships"]] == [acme.slug]
    listed = client.get(f"/api/v1/orgs/{acme.slug}/tokens").json()["results"]
    assert {t["user"] for t in listed} == {str(member.user.pk)}  # a member sees their own
    assert "token" not in listed[0] and "token_hash" not in listed[0]
    assert acme.client("admin").get(f"/api/v1/orgs/{acme.slug}/tokens").json()["results"].__len__() >= 4
    assert client.delete(f"/api/v1/orgs/{acme.slug}/tokens/{stored.pk}").status_code == 204
    assert client.get("/api/v1/me").status_code == 401


def test_a_token_is_only_for_an_org_the_user_belongs_to(acme, globex):
    response = APIClient().post(
        "/api/v1/auth/token",
        {"email": acme.members["owner"].user.email, "password": PASSWORD, "organization": globex.slug},
        format="json",
    )
    assert response.status_code == 404


def test_a_removed_members_tokens_stop_working(acme):
    client = acme.client("member")
    assert client.get(f"/api/v1/orgs/{acme.slug}").status_code == 200
    member = acme.members["member"]
    assert acme.client("admin").delete(f"/api/v1/orgs/{acme.slug}/members/{member.pk}").status_code == 204
    assert client.get(f"/api/v1/orgs/{acme.slug}").status_code == 401


def test_lists_are_cursor_paginated_and_filtered(acme):
    from tests.saas.factories import DocumentFactory, ProjectFactory

    other_project = ProjectFactory.create(organization=acme.org, name="Zeta")
    for index in range(5):
        DocumentFactory.create(project=acme.project, title=f"Report {index}")
    DocumentFactory.create(project=other_project, title="Report zeta")
    client = acme.client("member")
    base = f"/api/v1/orgs/{acme.slug}/documents"
    first = client.get(f"{base}?limit=4&title=report").json()
    assert len(first["results"]) == 4 and first["next"] and first["previous"] is None
    second = client.get(first["next"]).json()
    titles = [d["title"] for d in first["results"] + second["results"]]
    assert sorted(titles) == sorted([f"Report {i}" for i in range(5)] + ["Report zeta"])
    assert second["next"] is None
    by_project = client.get(f"{base}?project={other_project.pk}").json()["results"]
    assert [d["title"] for d in by_project] == ["Report zeta"]
    projects = client.get(f"/api/v1/orgs/{acme.slug}/projects?name=zet").json()["results"]
    assert [p["name"] for p in projects] == ["Zeta"]
    owners = client.get(f"/api/v1/orgs/{acme.slug}/members?role=owner").json()["results"]
    assert [m["user"]["id"] for m in owners] == [str(acme.members["owner"].user.pk)]
