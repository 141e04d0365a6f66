"""The request context middleware: request ids, access log lines, latency metric."""

from __future__ import annotations

import uuid

import pytest
from django.test import override_settings
from prometheus_client import REGISTRY

from regions.request_context import current_request_id
from saas.models import User
from tests.regions.observability.logcapture import json_lines


def latency_count(route: str, status: str, method: str = "GET") -> float:
    value = REGISTRY.get_sample_value(
        "saas_http_request_duration_seconds_count",
        {"region": "eu-west-1", "route": route, "method": method, "status": status},
    )
    return value or 0.0


@pytest.mark.django_db
def test_a_well_formed_request_id_is_kept_and_returned(client):
    incoming = f"lb-{uuid.uuid4()}"
    response = client.get("/health/live", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] == incoming
    assert current_request_id() is None  # reset once the request is over


@pytest.mark.django_db
@pytest.mark.parametrize(
    "incoming",
    [
        "short",
        "x" * 129,
        "has space 12345",
        "abc\r\nX-Injected: 1",
        '{"json":"value"}',
        "../../etc/passwd",
        "-leading-dash",
    ],
)
def test_a_malformed_request_id_is_replaced_by_a_generated_one(client, incoming):
    response = client.get("/health/live", HTTP_X_REQUEST_ID=incoming)
    generated = response["X-Request-ID"]
    assert generated != incoming
    assert len(generated) == 32 and int(generated, 16) >= 0


@pytest.mark.django_db
def test_each_request_without_an_id_gets_a_new_one(client):
    first = client.get("/health/live")["X-Request-ID"]
    second = client.get("/health/live")["X-Request-ID"]
    assert first != second


@pytest.mark.django_db
def test_access_line_has_route_template_status_duration_and_user_id_but_no_email(client):
    email = f"obs-{uuid.uuid4().hex[:8]}@example.test"
    user = User.objects.create(email=email, name="Obs Tester", home_region="eu-west-1")
    client.force_login(user)
    with json_lines() as lines:
        response = client.get("/admin/", HTTP_X_REQUEST_ID="req-access-line-1")
    access = [line for line in lines if line["logger"] == "regions.access"]
    assert len(access) == 1
    line = access[0]
    assert line["message"] == f"GET admin/ {response.status_code}"
    assert (line["method"], line["route"], line["status"]) == ("GET", "admin/", response.status_code)
    assert line["request_id"] == "req-access-line-1"
    assert line["region"] == "eu-west-1"
    assert line["user_id"] == str(user.pk)
    assert isinstance(line["duration_ms"], float)
    rendered = str(lines)
    assert email not in rendered and "Obs Tester" not in rendered and "127.0.0.1" not in rendered


@pytest.mark.django_db
def test_unmatched_paths_are_one_route_and_anonymous_users_have_no_id(client):
    with json_lines() as lines:
        client.get("/no/such/page/dana@example.test")
    access = next(line for line in lines if line["logger"] == "regions.access")
    assert (access["route"], access["status"], access["user_id"]) == ("<unmatched>", 404, None)
    assert "dana@example.test" not in str(lines)


@pytest.mark.django_db
def test_lines_logged_inside_a_view_carry_the_request_id_and_route(client):
    with override_settings(HEALTH_BROKER_SLOW_SECONDS=0.000001), json_lines() as lines:
        client.get("/health/ready", HTTP_X_REQUEST_ID="req-inside-view-1")
    failed = [line for line in lines if line["logger"] == "health_check"]
    assert failed, "the slow broker check logs a warning"
    assert {(line["request_id"], line["route"]) for line in failed} == {("req-inside-view-1", "health/ready")}


@pytest.mark.django_db
def test_latency_histogram_counts_requests_by_route_template_and_status(client):
    before_ok, before_missing = latency_count("admin/login/", "200"), latency_count("<unmatched>", "404")
    client.get("/admin/login/")
    client.get("/admin/login/")
    client.get("/nowhere-at-all")
    assert latency_count("admin/login/", "200") == before_ok + 2
    assert latency_count("<unmatched>", "404") == before_missing + 1
