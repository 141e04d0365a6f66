"""Wrong-region requests through real gunicorn processes of both harness regions."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

from residency.login_keys import login_key
from residency.models import ViolationEvent
from tests.harness.stack import TEST_SECRETS
from tests.residency.test_middleware import put_everywhere

WEB_SETTINGS = {"DJANGO_SETTINGS_MODULE": "tests.residency.web_settings"}
EMAIL = "ada.lovelace@analytical-engine.test"


def send(base_url: str, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None):
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.request(method, target, body=body or None, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.mark.slow
def test_a_307_from_eu_west_1_is_followed_to_us_east_1_with_method_body_path_and_query(
    harness, as_region, multi_region_db, region_web, settings
):
    # Login keys computed here must match the ones the servers compute (the fleet's secret).
    settings.DIRECTORY_SECRET = TEST_SECRETS["DIRECTORY_SECRET"]
    put_everywhere(as_region, "org", "acme-us", "us-east-1")
    put_everywhere(as_region, "login", login_key(EMAIL), "us-east-1")
    eu, us = harness.region("eu-west-1"), harness.region("us-east-1")
    eu_web = region_web("eu-west-1", **WEB_SETTINGS)
    region_web("us-east-1", **WEB_SETTINGS)

    body = json.dumps({"title": "Notes", "tags": ["ü", "ß"]}).encode()
    headers = {"Content-Type": "application/json", "X-Forwarded-Host": "evil.example"}
    target = "/api/v1/orgs/acme-us/projects?page=2&next=https://evil.example/"
    status, response_headers, raw = send(eu.base_url, "PATCH", target, body, headers)
    assert status == 307
    location = response_headers["Location"]
    assert location == us.base_url + target
    assert json.loads(raw)["code"] == "wrong_region"

    # A client repeats the request at Location, as 307 requires: same method and body.
    status, _, raw = send(
        us.base_url, "PATCH", urlsplit(location).path + "?" + urlsplit(location).query, body, headers
    )
    assert status == 200
    echoed = json.loads(raw)
    assert echoed["region"] == "us-east-1"
    assert (echoed["method"], echoed["path"], echoed["query"]) == (
        "PATCH",
        "/api/v1/orgs/acme-us/projects",
        "page=2&next=https://evil.example/",
    )
    assert echoed["body"].encode() == body

    # Login with a US email at the EU host: redirected; the email is in no log and no event.
    login = json.dumps({"email": EMAIL, "password": "correct horse"}).encode()
    status, response_headers, _ = send(
        eu.base_url, "POST", "/api/v1/auth/login", login, {"Content-Type": "application/json"}
    )
    assert status == 307
    assert response_headers["Location"] == f"{us.base_url}/api/v1/auth/login"
    eu_web.stop()  # flushes its log and runs the deferred event writes first
    log = eu_web.log_path.read_text(errors="replace")
    assert "wrong-region request redirected" in log
    assert "ada.lovelace" not in log.lower() and "analytical" not in log and login_key(EMAIL) not in log
    events = list(ViolationEvent.objects.order_by("occurred_at").values("subject_kind", "method", "status"))
    assert events == [
        {"subject_kind": "org", "method": "PATCH", "status": 307},
        {"subject_kind": "login", "method": "POST", "status": 307},
    ]
