"""The OpenAPI schema: valid OpenAPI 3, matching the URL routes, describing every error and header."""

from __future__ import annotations

import re

import pytest
import yaml
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from saas.api.base import ApiView


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def api_routes() -> dict[str, set[str]]:
    """Every /api/v1 route of the URLconf, as an OpenAPI path, with its view's methods."""
    found: dict[str, set[str]] = {}

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern):
                view = getattr(pattern.callback, "view_class", None)
                if view is not None and issubclass(view, ApiView):
                    path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
                    methods = {m for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)}
                    found[path] = methods

    walk(get_resolver().url_patterns, "")
    return found


def test_the_schema_is_valid_openapi_3(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.")


def test_the_schema_matches_the_routes(schema):
    routes = api_routes()
    assert len(routes) >= 16
    documented = {
        path: {m for m in item if m in {"get", "post", "put", "patch", "delete"}}
        for path, item in schema["paths"].items()
    }
    assert documented == routes


def test_every_operation_documents_its_errors_and_headers(schema):
    for path, item in schema["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            for status in ("307", "400", "429", "503"):
                assert status in responses, (path, method, status)
            if method in {"post", "patch"}:
                assert {"409", "413", "415", "422"} <= set(responses), (path, method)
                assert {"$ref": "#/components/parameters/IdempotencyKey"} in op["parameters"]
            if "{" in path:
                assert "404" in responses, (path, method)
            if {} not in op.get("security", [{}]):
                assert {"401", "403"} <= set(responses), (path, method)
            success = [r for s, r in responses.items() if s.startswith("2")]
            assert success, (path, method)
            for response in success:
                assert {"RateLimit", "RateLimit-Policy"} <= set(response["headers"]), (path, method)
            if "201" in responses:
                assert "Location" in responses["201"]["headers"]
    components = schema["components"]
    assert {"Problem", "ValidationProblem", "WrongRegionProblem"} <= set(components["schemas"])
    assert {"RateLimit", "RateLimit-Policy", "Retry-After", "Idempotent-Replayed", "Location"} <= set(
        components["headers"]
    )
    assert components["responses"]["TooManyRequests"]["headers"]["Retry-After"]
    assert components["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "Idempotency" in schema["info"]["description"] and "422" in schema["info"]["description"]


def test_the_interactive_docs_render_with_local_assets(db):
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html and "/api/schema/" in html
    assert "cdn.jsdelivr" not in html and "unpkg" not in html


# Headers every HTTP stack adds on its own; the schema describes the API's headers.
_TRANSPORT = {
    "content-type",
    "content-length",
    "vary",
    "allow",
    "cross-origin-opener-policy",
    "referrer-policy",
}
_TRANSPORT_PREFIXES = ("x-content-type-options", "x-frame-options", "strict-transport-security", "set-cookie")


def _declared_headers(schema, operation, status: str) -> set[str]:
    response = operation["responses"].get(status)
    assert response is not None, f"status {status} is not documented"
    if "$ref" in response:
        response = schema["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return {name.lower() for name in response.get("headers", {})}


def test_every_header_a_real_response_carries_is_declared(schema, acme):
    """Make real requests (a read, a write, a problem) and look up each API header in the schema."""
    client = acme.client("owner")
    documents = f"/api/v1/orgs/{acme.slug}/documents"
    calls = [
        (
            "get",
            "/api/v1/orgs/{org_slug}/documents",
            client.get(documents, HTTP_X_REQUEST_ID="req-12345678"),
        ),
        (
            "post",
            "/api/v1/orgs/{org_slug}/documents",
            client.post(
                documents,
                {"project": str(acme.project.pk), "title": "t", "body": "b"},
                format="json",
                HTTP_IDEMPOTENCY_KEY='"schema-headers-1"',
            ),
        ),
        ("post", "/api/v1/orgs/{org_slug}/documents", client.post(documents, {"title": 1}, format="json")),
    ]
    seen_causal = False
    for method, path, response in calls:
        assert response.status_code < 500, response.content
        declared = _declared_headers(schema, schema["paths"][path][method], str(response.status_code))
        for name in (header.lower() for header in response.headers):
            if name in _TRANSPORT or name.startswith(_TRANSPORT_PREFIXES):
                continue
            assert name in declared, (
                f"{method.upper()} {path} {response.status_code}: {name} not in the schema"
            )
        seen_causal |= "x-causal-token" in {h.lower() for h in response.headers}
    assert seen_causal, "the write should have given a causal token (the test would prove nothing)"
    operation = schema["paths"]["/api/v1/orgs/{org_slug}/documents"]["get"]
    assert {"$ref": "#/components/parameters/RequestId"} in operation["parameters"]
    assert {"$ref": "#/components/parameters/CausalToken"} in operation["parameters"]


# --- What API fuzzing (tests/saas/test_fuzz.py) found missing or loose in the schema ---------


def test_request_bodies_refuse_unknown_fields_and_are_required_when_they_have_required_fields(schema):
    schemas = schema["components"]["schemas"]
    requests = {name: c for name, c in schemas.items() if name.endswith("Request")}
    assert requests and all(c["additionalProperties"] is False for c in requests.values())
    assert schemas["PatchedMemberPatchInRequest"]["required"] == ["role"]
    member_patch = schema["paths"]["/api/v1/orgs/{org_slug}/members/{member_id}"]["patch"]
    assert member_patch["requestBody"]["required"] is True
    assert schemas["ProjectInRequest"]["properties"]["name"]["not"] == {"pattern": "\\u0000"}


def test_signup_names_the_registry_codes_and_exactly_one_of_zone_or_region(schema):
    signup = schema["components"]["schemas"]["SignupInRequest"]
    assert signup["properties"]["zone"]["enum"] == ["EU", "US", "APAC"]
    assert "eu-west-1" in signup["properties"]["region"]["enum"]
    assert signup["oneOf"] == [{"required": ["zone"]}, {"required": ["region"]}]
    assert signup["properties"]["password"]["minLength"] == 8


def test_the_idempotency_key_pattern_is_the_one_the_server_parses(schema):
    from saas import idempotency
    from saas.errors import IdempotencyKeyInvalid

    pattern = schema["components"]["parameters"]["IdempotencyKey"]["schema"]["pattern"]
    for value in ('"abc"', '"a\\"b"', '"' + "k" * 255 + '"', "abc", '""', '"' + "k" * 256 + '"', "0"):
        try:
            idempotency.parse_key(value)
            parsed = True
        except IdempotencyKeyInvalid:
            parsed = False
        assert (re.fullmatch(pattern, value) is not None) == parsed, value


def test_every_header_of_ours_is_declared_where_it_can_appear(schema):
    components = schema["components"]
    for name in ("Unauthorized", "Forbidden", "NotFound", "Conflict"):  # stored, so replayed
        assert "Idempotent-Replayed" in components["responses"][name]["headers"], name
    for response in components["responses"].values():
        assert {"X-Served-By-Region", "X-Request-ID", "X-Causal-Token"} <= set(response["headers"])
    for path, item in schema["paths"].items():
        for method, op in item.items():
            names = {p.get("$ref", "").rsplit("/", 1)[-1] for p in op["parameters"]}
            assert {"RequestId", "CausalToken"} <= names, (path, method)
            for status, response in op["responses"].items():
                if status.startswith("2"):
                    assert "X-Served-By-Region" in response["headers"], (path, method, status)
    # Logout accepts anonymous callers, but a revoked token it is sent is a 401.
    assert "401" in schema["paths"]["/api/v1/auth/logout"]["post"]["responses"]
