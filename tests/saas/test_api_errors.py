"""Every error is an RFC 9457 problem with a stable code: never a 500, never HTML."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from saas.models import Document


def problem(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.content)
    assert body["status"] == status and body["code"] == code
    assert body["type"].endswith(f"/{code}") and body["title"]
    return body


@pytest.mark.parametrize(
    "path", ["/api/v1/nope", "/api/v2/orgs", "/api/v1/orgs/acme/projects/not-a-uuid", "/api/"]
)
def test_unknown_routes_are_404_problems(db, path, settings):
    for debug in (False, True):  # not even the DEBUG technical page
        settings.DEBUG = debug
        problem(APIClient().get(path), 404, "not_found")


def test_wrong_methods_are_405_problems(acme):
    body = problem(
        acme.client("owner").put(f"/api/v1/orgs/{acme.slug}", {}, format="json"), 405, "method_not_allowed"
    )
    assert "PUT" in body["detail"]
    problem(APIClient().get("/api/v1/signup"), 405, "method_not_allowed")


def test_malformed_json_is_a_400_problem(acme):
    response = acme.client("member").post(
        f"/api/v1/orgs/{acme.slug}/documents", data=b'{"title": ', content_type="application/json"
    )
    problem(response, 400, "malformed_request")


def test_oversized_bodies_are_413_problems(acme, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    payload = {"project": str(acme.project.pk), "title": "big", "body": "x" * 5000}
    response = acme.client("member").post(f"/api/v1/orgs/{acme.slug}/documents", payload, format="json")
    problem(response, 413, "payload_too_large")
    assert not Document.objects.filter(title="big").exists()


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"title=x", "application/x-www-form-urlencoded"),
        (b"title", "text/plain"),
        (b"<a/>", "application/xml"),
    ],
)
def test_other_content_types_are_415_problems(acme, data, content_type):
    response = acme.client("member").post(
        f"/api/v1/orgs/{acme.slug}/documents", data=data, content_type=content_type
    )
    problem(response, 415, "unsupported_media_type")


def test_validation_errors_name_each_field(acme):
    response = acme.client("member").post(
        f"/api/v1/orgs/{acme.slug}/documents",
        {"project": "not-a-uuid", "title": "x" * 301, "colour": "red"},
        format="json",
    )
    body = problem(response, 400, "validation_error")
    fields = {e["field"]: e["code"] for e in body["errors"]}
    assert fields == {"colour": "unknown_field"}  # unknown fields first: a typo is never ignored
    missing = acme.client("member").post(f"/api/v1/orgs/{acme.slug}/documents", {}, format="json")
    assert {e["field"] for e in problem(missing, 400, "validation_error")["errors"]} == {"project", "title"}
    typed = acme.client("member").post(
        f"/api/v1/orgs/{acme.slug}/documents", {"project": "not-a-uuid", "title": "x" * 301}, format="json"
    )
    assert {e["field"]: e["code"] for e in problem(typed, 400, "validation_error")["errors"]} == {
        "project": "invalid",
        "title": "max_length",
    }


def test_bad_filters_and_cursors_are_field_errors(acme):
    client = acme.client("member")
    bad = client.get(f"/api/v1/orgs/{acme.slug}/documents?created_after=yesterday&project=1")
    assert {e["field"] for e in problem(bad, 400, "validation_error")["errors"]} == {
        "created_after",
        "project",
    }
    cursor = client.get(f"/api/v1/orgs/{acme.slug}/documents?cursor=garbage")
    assert problem(cursor, 400, "validation_error")["errors"][0]["field"] == "cursor"


def test_html_is_never_rendered_even_when_asked_for(acme):
    response = acme.client("member").get(f"/api/v1/orgs/{acme.slug}", HTTP_ACCEPT="text/html")
    problem(response, 406, "not_acceptable")
    browser = acme.client("member").get(
        f"/api/v1/orgs/{acme.slug}", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8"
    )
    assert browser.status_code == 200 and browser["Content-Type"] == "application/json"


def test_a_session_without_csrf_token_is_refused_with_a_problem(acme):
    from tests.saas.factories import PASSWORD

    client = APIClient(enforce_csrf_checks=True)
    login = client.post(
        "/api/v1/auth/login", {"email": acme.members["admin"].user.email, "password": PASSWORD}, format="json"
    )
    assert login.status_code == 200
    response = client.patch(f"/api/v1/orgs/{acme.slug}", {"name": "x"}, format="json")
    body = problem(response, 403, "permission_denied")
    assert "CSRF" in body["detail"]
    token = client.cookies["csrftoken-eu-west-1"].value
    ok = client.patch(f"/api/v1/orgs/{acme.slug}", {"name": "x"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert ok.status_code == 200


# --- Found by API fuzzing (tests/saas/test_fuzz.py) --------------------------------------


def test_a_wrong_method_is_405_before_the_idempotency_key_is_read(acme):
    client = acme.client("owner")
    response = client.patch("/api/v1/auth/login", {}, format="json", HTTP_IDEMPOTENCY_KEY="not-quoted")
    problem(response, 405, "method_not_allowed")
    response = client.patch(f"/api/v1/orgs/{acme.slug}/projects", {}, format="json", HTTP_IDEMPOTENCY_KEY="0")
    problem(response, 405, "method_not_allowed")


@pytest.mark.parametrize("limit", ["null", "0", "101", "-1", "abc", "", "1.5", "٣"])
def test_a_limit_outside_1_to_100_is_a_400_not_the_default_page(acme, limit):
    response = acme.client("member").get(f"/api/v1/orgs/{acme.slug}/projects", {"limit": limit})
    body = problem(response, 400, "validation_error")
    assert body["errors"] == [
        {"field": "limit", "message": "Give an integer from 1 to 100.", "code": "invalid"}
    ]
    assert (
        acme.client("member").get(f"/api/v1/orgs/{acme.slug}/projects", {"limit": "100"}).status_code == 200
    )


def test_a_path_with_an_encoded_newline_is_a_404_problem_even_with_debug(acme, settings):
    settings.DEBUG = True  # Django's HTML technical 404 answered these before
    for path in (f"/api/v1/orgs/{acme.slug}/projects/1%C2%8F%0A", "/api/v1/me%0A", "/api/%0A%0Ax"):
        problem(acme.client("member").get(path), 404, "not_found")


def test_numbers_are_not_strings(acme):
    client = acme.client("owner")
    response = client.patch(
        f"/api/v1/orgs/{acme.slug}/projects/{acme.project.pk}", {"name": 944535}, format="json"
    )
    assert {e["field"]: e["code"] for e in problem(response, 400, "validation_error")["errors"]} == {
        "name": "invalid"
    }
    response = client.post(
        f"/api/v1/orgs/{acme.slug}/documents", {"project": 42, "title": "t"}, format="json"
    )
    assert {e["field"] for e in problem(response, 400, "validation_error")["errors"]} == {"project"}
    acme.project.refresh_from_db()
    assert acme.project.name != "944535"
    assert (
        client.patch(
            f"/api/v1/orgs/{acme.slug}/projects/{acme.project.pk}", {"name": "ok"}, format="json"
        ).status_code
        == 200
    )


def test_a_blank_filter_filters_nothing(acme):
    response = acme.client("member").get(f"/api/v1/orgs/{acme.slug}/projects", {"name": "\x0c "})
    assert response.status_code == 200 and len(response.json()["results"]) == 1
