"""Schemathesis hooks for ``tests/saas/test_fuzz.py`` (loaded with ``SCHEMATHESIS_HOOKS``).

- ``problem_json_on_errors``: a check of our own on top of schemathesis's
  built-in ones: every error response (4xx and 5xx) is RFC 9457
  ``application/problem+json`` with the members the API promises (``type``,
  ``title``, ``status`` equal to the HTTP status, a stable ``code``).
- ``before_call``: the fuzzer never revokes its own token or removes its own
  membership (it learns their ids from list responses); every other id, real
  or random, is fair game.
- ``filter_failure``: the one narrow exception, for ``ST202`` (schema-
  valid request rejected) only, where the request was not schema-valid, or was
  refused for something no schema can state. Each dropped failure is counted
  in the report (``filtered``) and the figures of the run.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import schemathesis

from saas.api.schema import IDEMPOTENCY_KEY_PATTERN

PROBLEM = "application/problem+json"
DROPPED_LOG_ENV = "FUZZ_DROPPED_LOG"  # where filter_failure writes one reason a line
PROTECTED_IDS_ENV = "FUZZ_PROTECTED_IDS"  # the fuzzer's own token and membership, comma-separated

# Field errors whose rule is not a property of the request alone.
STATEFUL_FIELD_ERRORS = {
    # An opaque cursor is valid only when this server issued it (``next``/``previous``).
    ("cursor", "invalid"),
    # A document's project must exist in the organization (a reference, like a 404 of the URL).
    ("project", "does_not_exist"),
    # Django's password policy: a list of common passwords, similarity to the email/name.
    ("password", "password_too_common"),
    ("password", "password_too_similar"),
}


def _header(response: Any, name: str) -> str:
    value = response.headers.get(name.lower(), response.headers.get(name, [""]))
    return str(value[0] if isinstance(value, list) else value)


@schemathesis.check
def problem_json_on_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx answer is a problem document whose ``status`` matches the response."""
    if response.status_code < 400:
        return None
    content_type = _header(response, "Content-Type")
    if content_type.split(";")[0].strip() != PROBLEM:
        raise AssertionError(f"{response.status_code} answered {content_type!r}, not {PROBLEM}")
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.status_code} problem body is not JSON") from None
    missing = [key for key in ("type", "title", "status", "code") if key not in body]
    if missing:
        raise AssertionError(f"{response.status_code} problem lacks {missing}")
    if body["status"] != response.status_code:
        raise AssertionError(f"problem status {body['status']} != HTTP status {response.status_code}")
    return True


def false_rejection(case: Any, response: Any) -> str | None:
    """Why a "schema-valid request rejected" failure is not one, or ``None`` when it stands."""
    key = {k.lower(): v for k, v in (case.headers or {}).items()}.get("idempotency-key")
    if key is not None and re.fullmatch(IDEMPOTENCY_KEY_PATTERN, str(key)) is None:
        # Schemathesis's coverage phase only makes alphanumeric header values, so it sends a key
        # like `0` that the schema's pattern (a quoted structured-field string) excludes.
        return "Idempotency-Key outside the schema's pattern"
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    if response.status_code == 422 and body.get("code") == "idempotency_key_reused":
        return "the key was used before with another body (state, like a 409)"
    errors = body.get("errors") if response.status_code == 400 else None
    if errors and all((e.get("field"), e.get("code")) in STATEFUL_FIELD_ERRORS for e in errors):
        return "a rule no schema can state (issued cursors, the password policy's lists)"
    return None


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure except an ``ST202`` that ``false_rejection`` explains (logged, counted)."""
    reason = false_rejection(case, response) if getattr(failure, "code", None) == "ST202" else None
    if reason is None:
        return True
    log = os.environ.get(DROPPED_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write(reason + "\n")
    return False


# Headers of our own making (middleware, views): each must be declared for the status it came with.
OWN_HEADERS = (
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "Location",
    "Idempotent-Replayed",
    "WWW-Authenticate",
    "X-Served-By-Region",
    "X-Request-ID",
    "X-Causal-Token",
)


def _resolve(root: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = root
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def declared_headers(raw_schema: dict[str, Any], path: str, method: str, status: int) -> set[str] | None:
    """Lower-cased header names the schema declares for this response, or ``None`` if undeclared."""
    responses = raw_schema["paths"][path][method.lower()].get("responses", {})
    response = responses.get(str(status), responses.get(f"{str(status)[0]}XX", responses.get("default")))
    if response is None:
        return None
    return {name.lower() for name in _resolve(raw_schema, response).get("headers", {})}


@schemathesis.check
def no_undeclared_headers(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every header of ours in a response is declared in the schema for that status."""
    operation = case.operation
    declared = declared_headers(
        operation.schema.raw_schema, operation.path, operation.method, response.status_code
    )
    if declared is None:
        return None  # an undocumented status is status_code_conformance's finding
    present = {name.lower() for name in response.headers}
    missing = sorted(name for name in OWN_HEADERS if name.lower() in present and name.lower() not in declared)
    if missing:
        raise AssertionError(f"{response.status_code} carries headers the schema does not declare: {missing}")
    return True


NOWHERE = "00000000-0000-4000-8000-000000000000"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """A DELETE or PATCH naming the fuzzer's own token or membership goes to an id that does not
    exist instead (a 404): it would cut the run off. Every other id, real or random, is sent."""
    protected = set(filter(None, os.environ.get(PROTECTED_IDS_ENV, "").split(",")))
    if case.method.upper() not in {"DELETE", "PATCH"} or not case.path_parameters:
        return
    for name, value in list(case.path_parameters.items()):
        if str(value) in protected:
            case.path_parameters[name] = NOWHERE
