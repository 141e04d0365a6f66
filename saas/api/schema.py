"""The OpenAPI document: what drf-spectacular generates, plus every shared error and header.

``add_common_responses`` (a spectacular post-processing hook) adds to each
operation the responses and headers that the middleware and base view
produce, so the schema describes everything a client can receive:

- every response: ``RateLimit``, ``RateLimit-Policy``, ``X-Served-By-Region``,
  ``X-Request-ID``; 429 (``Retry-After``), 503; ``X-Causal-Token`` after writes;
- every operation: 400 (malformed or invalid input), 307 ``wrong_region``; the
  ``X-Request-ID`` and ``X-Causal-Token`` request headers;
- request bodies: no unknown fields (``additionalProperties: false``), required
  when they have required fields; signup's registry codes and rules;
- authenticated operations: 401 (``WWW-Authenticate``), 403;
- operations with path parameters: 404;
- POST and PATCH: the ``Idempotency-Key`` header, ``Idempotent-Replayed`` on
  success, 409 (in flight, with ``Retry-After``; or a state conflict), 422 (key
  reused with another body), 413 and 415;
- 201: ``Location``;
- every operation and response: ``X-Request-ID`` (correlation id, sent back),
  ``X-Served-By-Region``, and ``X-Causal-Token`` (read-your-writes token; send
  it back on later requests).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import MinimumLengthValidator, get_password_validators
from drf_spectacular.extensions import OpenApiAuthenticationExtension

from regions.observability.context import REQUEST_ID_HEADER
from regions.routing.middleware import SERVED_BY_HEADER
from regions.routing.tokens import HEADER as CAUSAL_TOKEN_HEADER
from regions.selectors import get_registry

PROBLEM = "application/problem+json"
API_DESCRIPTION = """\
Multi-region SaaS API. Every account and organization lives in one **home region**;
call that region's host (`https://<region>.api...`). A request that reaches another
region is answered `307` with `Location` on the home region (problem code `wrong_region`).

## Authentication
`Authorization: Bearer sk_<region>_<secret>` (from `POST /api/v1/auth/token`, scoped to one
organization), or a session cookie from `POST /api/v1/auth/login` (unsafe methods then need
`X-CSRFToken`).

## Errors
Every error is RFC 9457 `application/problem+json` with a stable `code`. Validation errors
list each field in `errors: [{field, message, code}]`. Unknown routes (`404 not_found`),
wrong methods (`405 method_not_allowed`), malformed JSON (`400 malformed_request`), oversized
bodies (`413 payload_too_large`) and other content types than JSON
(`415 unsupported_media_type`) are problems too. Objects of an organization you are not a
member of answer `404`, never `403`.

## Idempotency
`POST` and `PATCH` accept `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header), a
structured-field string such as `Idempotency-Key: "4e6a1f0c-8f8e-4bd6-9d63-6e1f9b1c1d2a"`:
- the key is scoped to your credential (token, session user, or address when anonymous),
  the method and the path; the body is fingerprinted (canonical JSON);
- a retry with the same key and body gets the first response again (status, body,
  `Location`) with `Idempotent-Replayed: true`; the effect happens once;
- the same key with another body: `422 idempotency_key_reused`;
- while the first request runs: `409 idempotency_request_in_flight` with `Retry-After`;
- a malformed key: `400 idempotency_key_invalid`;
- responses `400`, `413`, `415` and `5xx` are not stored: retry with the same key;
- a claim left by a crashed request expires after its lease (60 s by default); records are
  kept at least 24 hours.

## Rate limits
Per client tier (`anonymous`, `free`, `standard`, `critical`; sessions use `standard`),
GCRA in Redis. Every response carries `RateLimit-Policy: "<tier>";q=<quota>;w=<seconds>`
and `RateLimit: "<tier>";r=<remaining>;t=<seconds to full quota>`
(draft-ietf-httpapi-ratelimit-headers). Over the limit: `429 rate_limited` with
`Retry-After`. If the limiter is unavailable, the `critical` tier is served and others get
`503 rate_limiter_unavailable` with `Retry-After`.

## Lists
Cursor pagination: `?limit=` (1-100) and the opaque `next`/`previous` URLs.
"""


class BearerTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "saas.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "sk_<region>_<secret>",
            "description": "An API token scoped to one organization.",
        }


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": {"type": "string", "format": "uri", "description": "Documentation URL of the code."},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string", "description": "Stable machine-readable error code."},
            "detail": {"type": "string"},
            "instance": {"type": "string", "description": "The request path."},
        },
        "additionalProperties": True,
    }


def _validation_problem_schema() -> dict[str, Any]:
    return {
        "allOf": [
            {"$ref": "#/components/schemas/Problem"},
            {
                "type": "object",
                "properties": {
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["field", "message", "code"],
                            "properties": {
                                "field": {
                                    "type": "string",
                                    "description": "Dotted path; `__all__` for the body.",
                                },
                                "message": {"type": "string"},
                                "code": {"type": "string"},
                            },
                        },
                    }
                },
            },
        ]
    }


def _wrong_region_schema() -> dict[str, Any]:
    return {
        "allOf": [
            {"$ref": "#/components/schemas/Problem"},
            {
                "type": "object",
                "required": ["region", "location"],
                "properties": {
                    "region": {"type": "string", "description": "The home region."},
                    "location": {"type": "string", "format": "uri"},
                },
            },
        ]
    }


_HEADERS: dict[str, dict[str, Any]] = {
    "RateLimit": {
        "description": 'Remaining quota: `"<tier>";r=<remaining>;t=<seconds until the quota is full>`.',
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": 'The tier\'s policy: `"<tier>";q=<requests>;w=<seconds>`.',
        "schema": {"type": "string"},
    },
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}},
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored response of an earlier request with the same key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Location": {"description": "URL of the created or target resource.", "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": "The authentication scheme to use.", "schema": {"type": "string"}},
    REQUEST_ID_HEADER: {
        "description": "The request's correlation id: yours when well formed, else a new one. "
        "It appears in this region's logs and in every inter-region call the request causes.",
        "schema": {"type": "string"},
    },
    SERVED_BY_HEADER: {"description": "The region that answered.", "schema": {"type": "string"}},
    CAUSAL_TOKEN_HEADER: {
        "description": "Read-your-writes token, set after a request that wrote. Send it back as "
        f"`{CAUSAL_TOKEN_HEADER}` so later reads see your write even from a lagging replica.",
        "schema": {"type": "string"},
    },
}
# Headers that the middleware may put on any response, success or problem.
_EVERY_RESPONSE = ("RateLimit", "RateLimit-Policy", REQUEST_ID_HEADER, SERVED_BY_HEADER, CAUSAL_TOKEN_HEADER)


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _problem_response(
    description: str, schema: str = "Problem", headers: tuple[str, ...] = ()
) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM: {"schema": _ref("schemas", schema)}},
    }
    response["headers"] = {name: _ref("headers", name) for name in (*headers, *_EVERY_RESPONSE)}
    return response


_RESPONSES: dict[str, dict[str, Any]] = {
    "WrongRegion": _problem_response(
        "`wrong_region`: the subject lives in another region; repeat the request at `Location`.",
        "WrongRegionProblem",
        ("Location",),
    ),
    "BadRequest": _problem_response(
        "`validation_error` (with `errors` per field), `malformed_request` (unparsable JSON) or "
        "`idempotency_key_invalid`.",
        "ValidationProblem",
    ),
    # 401, 403, 404 and 409 of a keyed POST or PATCH are stored: a retry replays them.
    "Unauthorized": _problem_response(
        "`not_authenticated`, `authentication_failed` or `invalid_credentials`.",
        headers=("WWW-Authenticate", "Idempotent-Replayed"),
    ),
    "Forbidden": _problem_response(
        "`permission_denied` (your role does not allow this) or `csrf_failed`.",
        headers=("Idempotent-Replayed",),
    ),
    "NotFound": _problem_response(
        "`not_found`: no such object in an organization you belong to.", headers=("Idempotent-Replayed",)
    ),
    "Conflict": _problem_response(
        "`idempotency_request_in_flight` (with `Retry-After`) or a state conflict such as `last_owner`, "
        "`slug_taken`, `email_taken`, `already_member`, `cross_region_membership`.",
        headers=("Retry-After", "Idempotent-Replayed"),
    ),
    "PayloadTooLarge": _problem_response("`payload_too_large`: the body exceeds the size limit."),
    "UnsupportedMediaType": _problem_response("`unsupported_media_type`: send `application/json`."),
    "IdempotencyKeyReused": _problem_response(
        "`idempotency_key_reused`: this key was used with a different request body."
    ),
    "TooManyRequests": _problem_response(
        "`rate_limited`: the tier's limit is exceeded.", headers=("Retry-After",)
    ),
    "ServiceUnavailable": _problem_response(
        "`rate_limiter_unavailable` or `home_region_unavailable`.", headers=("Retry-After",)
    ),
}


def _operation_responses(path: str, method: str, operation: dict[str, Any]) -> dict[str, str]:
    """Which shared responses apply to an operation: status -> component name."""
    security = operation.get("security", [{}])
    anonymous = any(requirement == {} for requirement in security)
    # A credential is checked wherever one is accepted: a revoked token is 401 even at logout.
    authenticates = any(requirement != {} for requirement in security)
    needed = {
        "307": "WrongRegion",
        "400": "BadRequest",
        "429": "TooManyRequests",
        "503": "ServiceUnavailable",
    }
    if authenticates or "/auth/token" in path or "/auth/login" in path:
        needed["401"] = "Unauthorized"
    if not anonymous:
        needed["403"] = "Forbidden"
    if "{" in path or "/auth/token" in path:
        needed["404"] = "NotFound"
    if method in {"post", "patch"}:
        needed.update(
            {
                "409": "Conflict",
                "413": "PayloadTooLarge",
                "415": "UnsupportedMediaType",
                "422": "IdempotencyKeyReused",
            }
        )
    elif method == "delete":
        needed["409"] = "Conflict"
    return needed


# A structured-field string of 1-255 characters (``saas.idempotency.parse_key``); ``\\"`` and
# ``\\\\`` are one character each.
IDEMPOTENCY_KEY_PATTERN = r'^"(?:[ !#-\[\]-~]|\\["\\]){1,255}"$'


def _signup_constraints(schemas: dict[str, Any]) -> None:
    """What the signup serializer checks beyond its fields: codes from the registry, exactly one
    of ``zone`` or ``region``, and ``organization_name`` only with ``organization_slug``."""
    registry = get_registry()
    signup = schemas.get("SignupInRequest")
    if signup is None:
        return
    signup["properties"]["zone"]["enum"] = list(registry.zones)
    signup["properties"]["region"]["enum"] = list(registry.codes)
    signup["oneOf"] = [{"required": ["zone"]}, {"required": ["region"]}]
    password = signup["properties"]["password"]
    password["minLength"] = _password_min_length()
    password["pattern"] = "[^0-9]"  # not entirely numeric (unanchored: contains a non-digit)
    signup["anyOf"] = [{"not": {"required": ["organization_name"]}}, {"required": ["organization_slug"]}]


def _password_min_length() -> int:
    for validator in get_password_validators(settings.AUTH_PASSWORD_VALIDATORS):
        if isinstance(validator, MinimumLengthValidator):
            return validator.min_length
    return 1


def _require_body_with_required_fields(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A body whose schema requires fields is itself required (no body is a 400)."""
    body = operation.get("requestBody")
    if not body:
        return
    for media in body.get("content", {}).values():
        ref = media.get("schema", {}).get("$ref", "")
        if schemas.get(ref.rsplit("/", 1)[-1], {}).get("required"):
            body["required"] = True


def public_endpoints_only(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """Preprocessing hook: the public schema covers ``/api/v1/``; ``/internal/`` (inter-region,
    operator) endpoints are signed or token-guarded and documented with their packages."""
    return [endpoint for endpoint in endpoints if str(endpoint[0]).startswith("/api/v1/")]


def _header_parameter(
    name: str, description: str, *, max_length: int | None = None, pattern: str | None = None
) -> dict[str, Any]:
    """An optional request header parameter (no ``max_length``: any value is accepted)."""
    schema: dict[str, Any] = {"type": "string"}
    if max_length is not None:
        schema["maxLength"] = max_length
    if pattern is not None:
        schema["pattern"] = pattern
    return {"name": name, "in": "header", "required": False, "description": description, "schema": schema}


def add_common_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular post-processing hook (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``)."""
    result.setdefault("info", {})["description"] = API_DESCRIPTION
    components = result.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = _problem_schema()
    schemas["ValidationProblem"] = _validation_problem_schema()
    schemas["WrongRegionProblem"] = _wrong_region_schema()
    components.setdefault("headers", {}).update(_HEADERS)
    components.setdefault("responses", {}).update(_RESPONSES)
    components.setdefault("parameters", {}).update(
        IdempotencyKey=_header_parameter(
            "Idempotency-Key",
            'A structured-field string, e.g. `"4e6a1f0c-8f8e-4bd6-9d63-6e1f9b1c1d2a"` (1-255 characters). '
            "Retries with the same key and body replay the first response; see the API description.",
            max_length=2 * 255 + 2,  # 255 characters, each one possibly escaped, in quotes
            pattern=IDEMPOTENCY_KEY_PATTERN,
        ),
        RequestId=_header_parameter(
            REQUEST_ID_HEADER,
            "Your correlation id (8-128 of `A-Za-z0-9._:-`, starting alphanumeric); "
            "another value is replaced by a generated id, never refused.",
        ),
        CausalToken=_header_parameter(
            CAUSAL_TOKEN_HEADER,
            f"The last `{CAUSAL_TOKEN_HEADER}` this region gave you; an invalid or expired one "
            "only sends your reads to the primary (never refused).",
        ),
    )
    for name, component in schemas.items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False  # InputSerializer refuses unknown fields
            for field in component.get("properties", {}).values():
                if field.get("type") == "string" and "format" not in field and "enum" not in field:
                    field["not"] = {"pattern": "\\u0000"}  # DRF's CharField refuses NUL
    if "PatchedMemberPatchInRequest" in schemas:  # a role change names the role (MemberPatchIn)
        schemas["PatchedMemberPatchInRequest"]["required"] = ["role"]
    _signup_constraints(schemas)
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status_code, response in responses.items():
                if status_code.startswith("2"):
                    headers = response.setdefault("headers", {})
                    headers.update({name: _ref("headers", name) for name in _EVERY_RESPONSE})
                    if status_code == "201":
                        headers["Location"] = _ref("headers", "Location")
                    if method in {"post", "patch"}:
                        headers["Idempotent-Replayed"] = _ref("headers", "Idempotent-Replayed")
            for status_code, name in _operation_responses(path, method, operation).items():
                responses.setdefault(status_code, _ref("responses", name))
            _require_body_with_required_fields(operation, schemas)
            parameters = operation.setdefault("parameters", [])
            parameters += [_ref("parameters", "RequestId"), _ref("parameters", "CausalToken")]
            if method in {"post", "patch"}:
                parameters.append(_ref("parameters", "IdempotencyKey"))
    return result
