"""The residency middleware in the test process, acting as each harness region.

Directory entries are written in both regions (as replication delivers them),
so each region makes its own decision from its own copy.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from prometheus_client import REGISTRY

from regions.peer_health import peer_status_record
from regions.selectors import get_registry
from residency.cache import directory_cache_clear
from residency.login_keys import login_key
from residency.models import DirectoryEntry, ViolationEvent
from residency.services import directory_entry_apply_remote
from saas.models import User

pytestmark = pytest.mark.urls("tests.residency.urls")

US_EMAIL = "Grace.Hopper@Cobol-Navy.test"
US_USER_ID = uuid.UUID("6f1d4b7e-0000-4000-8000-00000000c0de")


def put_everywhere(as_region, kind: DirectoryEntry.Kind | str, key: str, home_region: str) -> None:
    """The directory entry in every harness region, as replication would leave it."""
    for code in ("eu-west-1", "us-east-1"):
        with as_region(code):
            directory_entry_apply_remote(
                kind=DirectoryEntry.Kind(kind),
                key=key,
                home_region=home_region,
                version=1,
                origin_region=home_region,
            )


def us_origin() -> str:
    return get_registry().region("us-east-1").public_url


@pytest.fixture
def entries(as_region, multi_region_db):
    # The directory cache outlives a database flush: start from an empty one.
    for code in ("eu-west-1", "us-east-1"):
        with as_region(code):
            directory_cache_clear()
    put_everywhere(as_region, "org", "acme-us", "us-east-1")
    put_everywhere(as_region, "org", "acme-eu", "eu-west-1")
    put_everywhere(as_region, "user", str(US_USER_ID), "us-east-1")
    put_everywhere(as_region, "login", login_key(US_EMAIL), "us-east-1")


def problem(response) -> dict[str, Any]:
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.content)
    return body


def test_us_org_url_at_eu_is_a_307_to_the_us_origin_keeping_method_path_and_query(entries):
    response = Client().post(
        "/api/v1/orgs/acme-us/projects?page=2&q=caf%C3%A9",
        data=b'{"name": "roadmap"}',
        content_type="application/json",
    )
    assert response.status_code == 307
    location = f"{us_origin()}/api/v1/orgs/acme-us/projects?page=2&q=caf%C3%A9"
    assert response["Location"] == location
    assert response["Cache-Control"] == "no-store"
    body = problem(response)
    assert (body["status"], body["code"], body["region"], body["location"]) == (
        307,
        "wrong_region",
        "us-east-1",
        location,
    )


def test_us_user_url_at_eu_is_redirected_and_served_at_home(entries, as_region):
    response = Client().delete(f"/api/v1/users/{US_USER_ID}?hard=1")
    assert response.status_code == 307
    assert response["Location"] == f"{us_origin()}/api/v1/users/{US_USER_ID}?hard=1"
    with as_region("us-east-1"):
        served = Client().delete(f"/api/v1/users/{US_USER_ID}?hard=1")
    assert served.status_code == 200
    assert served.json()["region"] == "us-east-1"


def test_the_same_request_at_its_home_region_is_served(entries, as_region):
    with as_region("us-east-1"):
        response = Client().post(
            "/api/v1/orgs/acme-us/projects?page=2", data=b'{"a": 1}', content_type="application/json"
        )
    assert response.status_code == 200
    assert response.json() == {
        "region": "us-east-1",
        "method": "POST",
        "path": "/api/v1/orgs/acme-us/projects",
        "query": "page=2",
        "body": '{"a": 1}',
        "kwargs": {"org_slug": "acme-us"},
    }
    assert Client().get("/api/v1/orgs/acme-eu/projects").status_code == 200


def test_unknown_subjects_and_requests_without_subject_are_served(entries):
    assert Client().get("/api/v1/orgs/nobody-knows/projects").status_code == 200
    assert Client().get("/api/v1/me").status_code == 200
    assert not ViolationEvent.objects.exists()


def test_login_with_a_us_email_at_eu_is_redirected_without_the_email_in_logs_or_events(entries, caplog):
    caplog.set_level(logging.DEBUG)
    body = json.dumps({"email": "  grace.hopper@COBOL-navy.test ", "password": "pw"})
    response = Client().post("/api/v1/auth/login", data=body, content_type="application/json")
    assert response.status_code == 307
    assert response["Location"] == f"{us_origin()}/api/v1/auth/login"
    event = ViolationEvent.objects.get()
    assert (event.subject_kind, event.decision, event.region, event.home_region) == (
        "login",
        "redirected",
        "eu-west-1",
        "us-east-1",
    )
    stored = json.dumps([str(getattr(event, f.attname)) for f in ViolationEvent._meta.fields])
    logged = "\n".join(
        f"{r.getMessage()} {r.args} {json.dumps(getattr(r, 'residency', None), default=str)}"
        for r in caplog.records
    )
    assert any(r.name == "residency.middleware" for r in caplog.records)
    for text in (stored, logged, response.content.decode()):
        lowered = text.lower()
        assert "grace" not in lowered and "hopper" not in lowered and "cobol" not in lowered
        assert login_key(US_EMAIL) not in text


def test_form_login_and_token_endpoint_use_the_login_key_too(entries):
    form = Client().post(
        "/api/v1/auth/token", data={"email": US_EMAIL, "password": "pw", "organization": "x"}
    )
    assert form.status_code == 307
    assert form["Location"] == f"{us_origin()}/api/v1/auth/token"
    eu_user = Client().post("/api/v1/auth/login", data={"email": "someone@else.example", "password": "pw"})
    assert eu_user.status_code == 200


def test_bad_login_bodies_are_left_to_the_view(entries):
    client = Client()
    for data, content_type in [
        (b"{not json", "application/json"),
        (b'["grace.hopper@example.com"]', "application/json"),
        (b'{"email": 42}', "application/json"),
        (b"email=grace.hopper@example.com", "text/plain"),
    ]:
        response = client.post("/api/v1/auth/login", data=data, content_type=content_type)
        assert response.status_code == 200, data
    assert not ViolationEvent.objects.exists()


def test_the_session_user_is_the_subject_when_the_url_names_none(entries, settings):
    # A user relocated to us-east-1 whose old EU session is still around.
    user = User.objects.create(id=US_USER_ID, email="relocated@example.org", home_region="eu-west-1")
    client = Client()
    client.force_login(user)
    response = client.get("/api/v1/me?x=1")
    assert response.status_code == 307
    assert response["Location"] == f"{us_origin()}/api/v1/me?x=1"
    assert ViolationEvent.objects.get().subject_kind == "user"


def test_an_api_token_is_redirected_by_the_region_it_names(entries):
    client = Client()
    us_token = client.get("/api/v1/me", HTTP_AUTHORIZATION="Bearer sk_us-east-1_s3cr3t")
    assert us_token.status_code == 307
    assert us_token["Location"] == f"{us_origin()}/api/v1/me"
    assert problem(us_token)["region"] == "us-east-1"
    for forged in [
        "Bearer sk_evil.example.com_x",
        "Bearer sk_127.0.0.1:1_x",
        "Token sk__x",
        "Bearer sk_eu-west-1_x",
    ]:
        assert client.get("/api/v1/me", HTTP_AUTHORIZATION=forged).status_code == 200, forged


@pytest.mark.parametrize(
    "extra",
    [
        {"HTTP_HOST": "127.0.0.1:1"},
        {"HTTP_X_FORWARDED_HOST": "evil.example"},
        {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_FORWARDED": "host=evil.example"},
        {"HTTP_REFERER": "https://evil.example/"},
    ],
)
def test_forged_host_headers_never_change_the_target(entries, extra):
    response = Client().get(
        "/api/v1/orgs/acme-us/projects?next=https://evil.example/&redirect=//evil.example", **extra
    )
    assert response.status_code == 307
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}" == us_origin()
    assert location.path == "/api/v1/orgs/acme-us/projects"
    assert location.query == "next=https://evil.example/&redirect=//evil.example"


def test_even_a_trusted_forwarded_host_does_not_choose_the_target(entries, settings):
    settings.USE_X_FORWARDED_HOST = True
    response = Client().get("/api/v1/orgs/acme-us/projects", HTTP_X_FORWARDED_HOST="127.0.0.1:9")
    assert response.status_code == 307
    assert response["Location"] == f"{us_origin()}/api/v1/orgs/acme-us/projects"


def test_a_host_outside_allowed_hosts_is_refused_not_redirected(entries):
    response = Client().get("/api/v1/orgs/acme-us/projects", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert "Location" not in response


def test_a_directory_entry_naming_an_unknown_region_is_never_followed(entries, as_region):
    with as_region("eu-west-1"):
        directory_entry_apply_remote(
            kind=DirectoryEntry.Kind.ORGANIZATION,
            key="planted",
            home_region="evil.example",
            version=1,
            origin_region="eu-west-1",
        )
    response = Client().get("/api/v1/orgs/planted/projects")
    assert response.status_code == 503
    assert "Location" not in response
    assert problem(response)["code"] == "home_region_unavailable"


def test_home_region_down_is_a_503_with_retry_after_never_a_redirect(entries, settings):
    settings.RESIDENCY_RETRY_AFTER_SECONDS = 17
    settings.RESIDENCY_PEER_HEALTH_LOCAL_TTL = 0  # read the peer health cache on every request
    peer_status_record(code="us-east-1", healthy=False, detail="503 from /health/ready")
    try:
        response = Client().post("/api/v1/orgs/acme-us/projects", data={"a": "1"})
    finally:
        peer_status_record(code="us-east-1", healthy=True)
    assert response.status_code == 503
    assert response["Retry-After"] == "17"
    assert "Location" not in response
    body = problem(response)
    assert (body["code"], body["region"], body["status"]) == ("home_region_unavailable", "us-east-1", 503)
    event = ViolationEvent.objects.get()
    assert (event.decision, event.target_region, event.status) == ("unavailable", "", 503)
    # Healthy again (or unknown): redirected as usual.
    assert Client().get("/api/v1/orgs/acme-us/projects").status_code == 307


def decisions(decision: str, subject_kind: str) -> float:
    labels = {"region": "eu-west-1", "decision": decision, "subject_kind": subject_kind}
    return REGISTRY.get_sample_value("saas_residency_decisions_total", labels) or 0.0


def test_every_decision_is_counted_in_the_metrics(entries):
    before = {outcome: decisions(outcome, "org") for outcome in ("served", "redirected", "unknown_subject")}
    assert Client().get("/api/v1/orgs/acme-eu/projects").status_code == 200
    assert Client().get("/api/v1/orgs/acme-us/projects").status_code == 307
    assert Client().get("/api/v1/orgs/acme-us/projects").status_code == 307
    assert Client().get("/api/v1/orgs/nobody-knows/projects").status_code == 200
    assert decisions("served", "org") == before["served"] + 1
    assert decisions("redirected", "org") == before["redirected"] + 2
    assert decisions("unknown_subject", "org") == before["unknown_subject"] + 1


def test_exempt_paths_are_never_redirected(entries):
    assert Client().get("/internal/ping/acme-us").status_code == 200


def test_violation_events_hold_no_personal_data(entries, as_region):
    Client().get(f"/api/v1/users/{US_USER_ID}")
    Client().get("/api/v1/orgs/acme-us/projects?email=grace.hopper@example.com")
    Client().generic("PROPFIND", "/api/v1/orgs/acme-us/projects")
    events = list(ViolationEvent.objects.order_by("occurred_at"))
    assert [e.subject_kind for e in events] == ["user", "org", "org"]
    assert {e.path_template for e in events} == {
        "api/v1/users/<uuid:user_id>",
        "api/v1/orgs/<slug:org_slug>/projects",
    }
    assert events[2].method == "OTHER"
    for event in events:
        values = " ".join(str(getattr(event, f.attname)) for f in ViolationEvent._meta.fields)
        assert str(US_USER_ID) not in values and "acme" not in values and "grace" not in values
        assert len(event.subject_hash) == 32
    # The same subject always hashes the same, so events correlate without revealing it.
    assert events[1].subject_hash == events[2].subject_hash != events[0].subject_hash


def test_old_violation_events_are_pruned_daily(entries, settings):
    from datetime import timedelta

    from django.utils import timezone

    from residency.tasks import prune_violation_events

    Client().get("/api/v1/orgs/acme-us/projects")
    Client().get(f"/api/v1/users/{US_USER_ID}")
    old = ViolationEvent.objects.filter(subject_kind="org")
    old.update(
        occurred_at=timezone.now() - timedelta(days=settings.RESIDENCY_VIOLATION_RETENTION_DAYS, hours=1)
    )
    assert prune_violation_events() == 1
    assert list(ViolationEvent.objects.values_list("subject_kind", flat=True)) == ["user"]
    entry = settings.CELERY_BEAT_SCHEDULE["residency.violation_events_prune"]
    assert entry["task"] == prune_violation_events.name and entry["schedule"] <= 24 * 3600
