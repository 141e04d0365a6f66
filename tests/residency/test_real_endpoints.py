"""A US customer who keeps calling the EU host, through the real API on real gunicorn processes.

Sign up, get a token, call org and user endpoints: every wrong-region call is
a 307 to the US host from the registry, and repeating it there is served.
The directory entries written at signup in us-east-1 are copied to eu-west-1
here, as replication delivers them.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from residency.models import DirectoryEntry, ViolationEvent
from residency.services import directory_entry_apply_remote
from tests.harness.stack import TEST_SECRETS
from tests.residency.test_redirect_http import send

EMAIL = "katherine.johnson@orbital-mechanics.test"
PASSWORD = "a long and unusual passphrase 42"


def call(base_url: str, method: str, target: str, payload: dict[str, str] | None = None, token: str = ""):
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps(payload).encode() if payload is not None else b""
    status, response_headers, raw = send(base_url, method, target, body, headers)
    return status, response_headers, json.loads(raw) if raw else None


def follow(location: str) -> tuple[str, str]:
    """(origin, path and query) of a Location."""
    parts = urlsplit(location)
    return f"{parts.scheme}://{parts.netloc}", parts.path + (f"?{parts.query}" if parts.query else "")


def replicate_directory(as_region, source: str, target: str) -> int:
    with as_region(source):
        rows = list(DirectoryEntry.objects.values("kind", "key", "home_region", "version", "origin_region"))
    with as_region(target):
        for row in rows:
            directory_entry_apply_remote(
                kind=DirectoryEntry.Kind(row["kind"]),
                key=row["key"],
                home_region=row["home_region"],
                version=row["version"],
                origin_region=row["origin_region"],
            )
    return len(rows)


@pytest.mark.slow
def test_a_us_customer_at_the_eu_host_is_sent_home_at_every_step(
    harness, as_region, multi_region_db, region_web, settings
):
    settings.DIRECTORY_SECRET = TEST_SECRETS["DIRECTORY_SECRET"]
    eu, us = harness.region("eu-west-1"), harness.region("us-east-1")
    region_web("eu-west-1")
    region_web("us-east-1")

    # Sign up for the US at the EU host: the API sends the signup to the US host.
    signup = {
        "email": EMAIL,
        "password": PASSWORD,
        "region": "us-east-1",
        "organization_name": "Orbital",
        "organization_slug": "orbital",
    }
    status, headers, body = call(eu.base_url, "POST", "/api/v1/signup", signup)
    assert (status, body["code"]) == (307, "wrong_region")
    origin, target = follow(headers["Location"])
    assert origin == us.base_url
    status, _, body = call(origin, "POST", target, signup)
    assert status == 201, body
    user_id = body["user"]["id"]
    assert replicate_directory(as_region, "us-east-1", "eu-west-1") == 3  # user, login, org

    # A token asked for at the EU host: the posted email's login key sends it home.
    ask = {"email": EMAIL, "password": PASSWORD, "organization": "orbital"}
    status, headers, body = call(eu.base_url, "POST", "/api/v1/auth/token?label=ci", ask)
    assert (status, body["code"], body["region"]) == (307, "wrong_region", "us-east-1")
    origin, target = follow(headers["Location"])
    assert (origin, target) == (us.base_url, "/api/v1/auth/token?label=ci")
    status, _, body = call(origin, "POST", target, ask)
    assert status == 201, body
    token = body["token"]
    assert token.startswith("sk_us-east-1_")

    # Org, user and token-only routes at the EU host: redirected, then served at home.
    for path in ("/api/v1/orgs/orbital/projects?limit=5", f"/api/v1/users/{user_id}", "/api/v1/me"):
        status, headers, body = call(eu.base_url, "GET", path, token=token)
        assert status == 307, path
        assert headers["Location"] == us.base_url + path
        status, _, body = call(us.base_url, "GET", path, token=token)
        assert status == 200, (path, body)

    # Writes too: the project is created at home only.
    status, headers, _ = call(eu.base_url, "POST", "/api/v1/orgs/orbital/projects", {"name": "Apollo"}, token)
    assert status == 307
    status, _, body = call(us.base_url, "POST", "/api/v1/orgs/orbital/projects", {"name": "Apollo"}, token)
    assert status == 201, body

    # The EU region kept one event per redirect, none with the customer's data.
    events = list(ViolationEvent.objects.values_list("subject_kind", "path_template", "decision"))
    assert sorted(kind for kind, _, _ in events) == ["login", "org", "org", "token", "user"]
    assert {decision for _, _, decision in events} == {"redirected"}
    stored = json.dumps(list(ViolationEvent.objects.values()), default=str)
    for secret in ("katherine", "orbital-mechanics", 'orbital"', user_id, token):
        assert secret not in stored
