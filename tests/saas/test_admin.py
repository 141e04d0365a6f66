"""The admin: region banner on every page, staff only, every model registered, throttled login."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client

from saas.models import ApiToken, Document, IdempotencyRecord, Membership, Organization, Project, User
from tests.saas.factories import PASSWORD, DocumentFactory, UserFactory

BANNER = 'id="region-banner"'


def staff_client() -> Client:
    client = Client()
    client.force_login(UserFactory.create(is_staff=True))
    return client


def test_the_login_page_shows_the_region_and_zone_banner_in_the_zone_colour(db):
    html = Client().get("/admin/login/").content.decode()
    assert BANNER in html
    assert "Region eu-west-1" in html and "zone EU (European Union (GDPR))" in html
    assert "background: #1d4ed8" in html


def test_another_regions_admin_shows_its_own_zone_colour(as_region, multi_region_db):
    with as_region("us-east-1"):
        html = Client().get("/admin/login/").content.decode()
    assert "Region us-east-1" in html and "background: #b91c1c" in html


@pytest.mark.parametrize(
    "model", [User, Organization, Membership, Project, Document, ApiToken, IdempotencyRecord]
)
def test_every_saas_admin_page_has_the_banner_search_and_filters(acme, model):
    client = staff_client()
    base = f"/admin/saas/{model._meta.model_name}/"
    listing = client.get(f"{base}?q=a")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert BANNER in html and 'id="changelist-search"' in html and 'id="changelist-filter"' in html
    obj = model.objects.first()
    if obj is not None:
        detail = client.get(f"{base}{obj.pk}/change/")
        assert detail.status_code == 200 and BANNER in detail.content.decode()


def test_search_finds_documents_by_title(acme):
    DocumentFactory.create(project=acme.project, title="Quarterly needle report")
    html = staff_client().get("/admin/saas/document/?q=needle").content.decode()
    assert "Quarterly needle report" in html and "1 result" in html


def test_every_saas_model_is_registered():
    models = list(apps.get_app_config("saas").get_models())
    assert len(models) >= 7
    assert [m._meta.label for m in models if not admin.site.is_registered(m)] == []


def test_the_admin_is_for_staff_only(db):
    user = UserFactory.create()
    client = Client()
    client.force_login(user)
    response = client.get("/admin/saas/document/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    refused = Client().post("/admin/login/", {"username": user.email, "password": PASSWORD})
    assert refused.status_code == 200 and "_auth_user_id" not in refused.wsgi_request.session


def test_login_attempts_are_throttled_per_account(db, settings, rate_limits_reset):
    settings.ADMIN_LOGIN_RATE_PER_ACCOUNT = "3/600"
    staff = UserFactory.create(is_staff=True)
    client = Client()
    statuses = [
        client.post("/admin/login/", {"username": staff.email, "password": "wrong"}).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
    blocked = client.post("/admin/login/", {"username": staff.email, "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0
    html = blocked.content.decode()
    assert "Too many login attempts" in html and BANNER in html
    assert "_auth_user_id" not in client.session  # even the right password waits


def test_login_attempts_are_throttled_per_client_across_accounts(db, settings, rate_limits_reset):
    settings.ADMIN_LOGIN_RATE_PER_CLIENT = "2/600"
    client = Client()
    for index in range(2):
        assert (
            client.post("/admin/login/", {"username": f"u{index}@x.test", "password": "x"}).status_code == 200
        )
    assert client.post("/admin/login/", {"username": "u9@x.test", "password": "x"}).status_code == 429


def test_login_fails_closed_when_redis_is_down(db, harness):
    redis = harness.region("eu-west-1").redis
    redis.stop()
    try:
        response = Client().post("/admin/login/", {"username": "a@b.test", "password": "x"})
    finally:
        redis.restart()
    assert response.status_code == 503 and "unavailable" in response.content.decode()
