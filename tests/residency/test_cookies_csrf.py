"""Session and CSRF cookies belong to one region host; CSRF trusts exact region origins only."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from regions.selectors import get_registry
from residency.checks import check_cookies_and_origins

pytestmark = pytest.mark.urls("tests.residency.urls")


@pytest.mark.parametrize("code", ["eu-west-1", "us-east-1"])
def test_each_region_trusts_exactly_its_own_origin_and_scopes_cookies_to_its_host(as_region, code):
    with as_region(code):
        assert settings.CSRF_TRUSTED_ORIGINS == [get_registry().region(code).public_url]
        assert settings.SESSION_COOKIE_DOMAIN is None and settings.CSRF_COOKIE_DOMAIN is None
        assert (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME) == (
            f"sessionid-{code}",
            f"csrftoken-{code}",
        )
        assert check_cookies_and_origins() == []


def test_cookies_are_host_only(db):
    response = Client().get("/browser/session")
    assert response.status_code == 200
    session = response.cookies["sessionid-eu-west-1"]
    csrf = response.cookies["csrftoken-eu-west-1"]
    for cookie in (session, csrf):
        assert cookie["domain"] == ""  # no Domain attribute: the browser keeps it for this host only
    assert "Domain" not in session.output() and "Domain" not in csrf.output()
    assert session["httponly"] is True and session["samesite"] == "Lax"


def test_a_form_posted_from_another_region_s_origin_is_refused(db):
    eu, us = (get_registry().region(c) for c in ("eu-west-1", "us-east-1"))
    client = Client(enforce_csrf_checks=True)
    token = client.get("/browser/session", HTTP_HOST=eu.public_netloc).json()["csrf"]

    def post(origin: str):
        return client.post(
            "/browser/form", {"csrfmiddlewaretoken": token}, HTTP_HOST=eu.public_netloc, HTTP_ORIGIN=origin
        )

    assert post(eu.public_url).status_code == 200
    refused = post(us.public_url)
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"
    assert post("https://evil.example").status_code == 403


@pytest.mark.parametrize(
    ("name", "value", "check_id"),
    [
        ("CSRF_TRUSTED_ORIGINS", ["https://*.saas.example.com"], "residency.E022"),
        ("CSRF_TRUSTED_ORIGINS", ["https://eu-west-1.api.saas.example.com/app"], "residency.E022"),
        ("SESSION_COOKIE_DOMAIN", ".saas.example.com", "residency.E023"),
        ("CSRF_COOKIE_DOMAIN", "saas.example.com", "residency.E023"),
    ],
)
def test_wildcard_origins_and_parent_domain_cookies_stop_the_boot(settings, name, value, check_id):
    setattr(settings, name, value)
    assert [m.id for m in check_cookies_and_origins()] == [check_id]
