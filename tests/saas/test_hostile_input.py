"""Hostile input over real HTTP against gunicorn: a clear 4xx problem, and nothing changes.

Each test sends its attacks to a real gunicorn process of eu-west-1 (over the
harness's PostgreSQL primary, streaming replicas and Redis), and compares the
row counts of every resident, directory and replication table on the primary
before and after (``snapshot``). Raw sockets where the attack is in the bytes
(header values, invalid UTF-8, unnormalized paths), which ``http.client`` would
refuse or rewrite.
"""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from saas.models import ApiToken, Membership
from tests.harness.stack import TEST_SECRETS
from tests.residency.test_middleware import put_everywhere
from tests.saas.factories import MembershipFactory, OrganizationFactory, ProjectFactory, token_for

TABLES = (
    "saas_user",
    "saas_organization",
    "saas_membership",
    "saas_project",
    "saas_document",
    "saas_apitoken",
    "saas_idempotencyrecord",
    "residency_directoryentry",
    "residency_auditrun",
    "regions_outboxevent",
    "regions_inboxevent",
    "regions_deadletter",
)
PROBLEM = "application/problem+json"


def snapshot(stack) -> dict[str, int]:
    """Row counts of every table a request could change, on the region primary."""
    query = "SELECT count(*) FROM {}"  # table names from TABLES above, never from input
    return {table: int(stack.primary.execute(query.format(table))[0][0]) for table in TABLES}


def raw_request(base_url: str, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; parse the status line, headers and body of the answer."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as conn:
        conn.sendall(head + body)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    header_block, _, content = raw.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        content = dechunk(content)
    return status, headers, content


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


def not_http(value: bytes) -> bool:
    """Bytes no HTTP/1.1 field value may hold (RFC 9110 5.5: control characters but HTAB).

    gunicorn refuses such a request itself, before any application code runs,
    as it does a header field over 8190 bytes (the load balancer in front
    refuses them first in production); ``regions.gunicorn_errors`` makes its
    answer a ``400 malformed_request`` problem too."""
    return any((byte < 0x20 and byte != 0x09) or byte == 0x7F for byte in value)


def request(
    base_url: str,
    method: str,
    target: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    raw_headers: bytes = b"",
    host: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    netloc = host if host is not None else urlsplit(base_url).netloc
    lines = [f"{method} {target} HTTP/1.1", f"Host: {netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in {"POST", "PATCH", "PUT"}:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n").encode("latin-1") + raw_headers + b"\r\n"
    return raw_request(base_url, head, body)


def problem(
    answer: tuple[int, dict[str, str], bytes], status: int, code: str | None = None
) -> dict[str, Any]:
    got, headers, content = answer
    assert got == status, (got, content[:300])
    assert headers["content-type"] == PROBLEM, headers
    body: dict[str, Any] = json.loads(content)
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    return body


@pytest.fixture
def world(harness, transactional_db, region_web, rate_limits_reset):
    """An organization with a project and an admin's token, committed, and eu-west-1 serving it."""
    org = OrganizationFactory.create(slug="acme")
    admin = MembershipFactory.create(organization=org, role=Membership.Role.ADMIN)
    project = ProjectFactory.create(organization=org)
    token = token_for(admin, tier=ApiToken.Tier.CRITICAL)
    eu = harness.region("eu-west-1")
    for replica in eu.replicas:
        replica.wait_for_replay(eu.primary.current_lsn())
    web = region_web("eu-west-1", DATA_UPLOAD_MAX_MEMORY_SIZE=str(1024 * 1024))
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return {"eu": eu, "org": org, "project": project, "auth": auth, "token": token, "web": web}


@pytest.mark.slow
def test_forged_host_and_forwarded_headers(world, harness, as_region, region_web, settings):
    eu, us = world["eu"], harness.region("us-east-1")
    settings.DIRECTORY_SECRET = TEST_SECRETS["DIRECTORY_SECRET"]
    put_everywhere(as_region, "org", "globex-us", "us-east-1")
    region_web("us-east-1")
    before = snapshot(eu)

    # A Host that is not ours: 400 problem, and the forged name is not echoed.
    for host in ("evil.example", "127.0.0.1.evil.example", "eu-west-1.api.example.com@evil.example"):
        body = problem(request(eu.base_url, "GET", "/api/v1/me", headers=world["auth"], host=host), 400)
        assert "evil" not in json.dumps(body)
    # X-Forwarded-Host/-Proto/-For never pick a redirect target: Location comes from the registry.
    forged = {
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": "203.0.113.9",
        "Forwarded": "host=evil.example;proto=https",
    }
    for method in ("GET", "POST"):
        answer = request(
            eu.base_url,
            method,
            "/api/v1/orgs/globex-us/projects",
            headers={**world["auth"], **forged},
            body=b"{}",
        )
        body = problem(answer, 307, "wrong_region")
        assert answer[1]["location"] == f"{us.base_url}/api/v1/orgs/globex-us/projects"
        assert body["location"] == answer[1]["location"] and body["region"] == "us-east-1"
    assert snapshot(eu) == before


@pytest.mark.slow
def test_header_injection_in_idempotency_key_and_request_id(world):
    eu, path = world["eu"], f"/api/v1/orgs/{world['org'].slug}/projects"
    before = snapshot(eu)
    payload = json.dumps({"name": "injected"}).encode()
    for key in (
        b'"a"\r\nX-Injected: 1',  # CR/LF: a second header line (see below)
        b'"a\x01b"',
        b'"a\tb"',
        b'"\xc3\xa9t\xc3\xa9"',  # UTF-8 bytes
        b'"\xff\xfe"',  # not UTF-8 at all
        b'"' + b"k" * 256 + b'"',  # over 255 characters
        b'"' + b"k" * 8000 + b'"',  # overlong, within gunicorn's 8190-byte field limit
        b"plain-token",  # not a structured-field string
        b'"%0d%0aX-Injected: 1"',
    ):
        head = (
            (
                f"POST {path} HTTP/1.1\r\nHost: {urlsplit(eu.base_url).netloc}\r\nConnection: close\r\n"
                f"Authorization: {world['auth']['Authorization']}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n"
            ).encode()
            + b"Idempotency-Key: "
            + key
            + b"\r\n\r\n"
        )
        status, headers, content = raw_request(eu.base_url, head, payload)
        if key.startswith(b'"a"\r\n') or key.startswith(b'"%0d'):
            # The CR/LF ended the header: the key is the valid "a" and X-Injected is just a header
            # of the request. Percent-escapes are plain characters of a valid key. Either way
            # nothing of it reaches the response.
            assert status == 201, content
            assert "x-injected" not in headers
            continue
        assert status == 400, (key[:40], status, content[:200])
        assert headers["content-type"] == PROBLEM, key[:40]
        # gunicorn refuses the request itself (see not_http): nothing reached the app.
        expected = "malformed_request" if not_http(key) else "idempotency_key_invalid"
        assert json.loads(content)["code"] == expected
        assert not any("injected" in value.lower() for value in headers.values())
    created = snapshot(eu)
    assert created == {
        **before,
        "saas_project": before["saas_project"] + 2,
        "saas_idempotencyrecord": before["saas_idempotencyrecord"] + 2,
    }

    # X-Request-ID: a malformed one is replaced by a fresh id, never echoed.
    for value in (
        b"abc\x01defgh-1234",
        b"x" * 8000,
        b"\xc3\xa9" * 10,
        b"12345678%0d%0aSet-Cookie: a=b",
        b"<script>",
    ):
        head = (
            (
                f"GET /api/v1/me HTTP/1.1\r\nHost: {urlsplit(eu.base_url).netloc}\r\nConnection: close\r\n"
                f"Authorization: {world['auth']['Authorization']}\r\n"
            ).encode()
            + b"X-Request-ID: "
            + value
            + b"\r\n\r\n"
        )
        status, headers, content = raw_request(eu.base_url, head)
        if not_http(value):
            problem((status, headers, content), 400, "malformed_request")
            continue
        assert status == 200
        assert headers["x-request-id"].encode() != value and len(headers["x-request-id"]) <= 128
        assert "set-cookie" not in headers or "a=b" not in headers["set-cookie"]
    assert snapshot(eu) == created


@pytest.mark.slow
def test_requests_gunicorn_refuses_get_problems_and_leave_no_client_ip_in_the_log(world):
    """Not HTTP/1.1 at all: gunicorn answers before Django, in problem+json (regions.gunicorn_errors)."""
    eu = world["eu"]
    host = urlsplit(eu.base_url).netloc
    before = snapshot(eu)
    cases = [
        # A request line that is not one, a header name with a space, a control character.
        (b"GET /api/v1/me HTTP/1.1 extra\r\nHost: " + host.encode() + b"\r\n\r\n", 400, "malformed_request"),
        (b"GET /api/v1/me HTTP/1.1\r\nHost: " + host.encode() + b"\r\nBad Name: x\r\n\r\n", 400, None),
        (b"GET /api/v1/me HTTP/1.1\r\nHost: " + host.encode() + b"\r\nX-A: a\x01b\r\n\r\n", 400, None),
        # A header field over gunicorn's 8190 bytes, a request line over its 4094.
        (
            b"GET /api/v1/me HTTP/1.1\r\nHost: " + host.encode() + b"\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
            431,
            "request_header_fields_too_large",
        ),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n", 414, "uri_too_long"),
    ]
    for head, status, code in cases:
        body = problem(raw_request(eu.base_url, head), status, code)
        assert body["type"].endswith(body["code"]) and "b" * 100 not in json.dumps(body)
    assert snapshot(eu) == before
    log = world["web"].log_path.read_text()
    refused = [line for line in log.splitlines() if "Invalid request" in line]
    assert len(refused) >= len(cases)  # gunicorn's warnings are still there, with their reason ...
    assert all("Invalid request: " in line for line in refused)
    assert not [line for line in refused if "ip=" in line or "127.0.0.1" in line]  # ... not the client's IP


@pytest.mark.slow
def test_huge_deep_and_invalid_bodies(world):
    eu, path = world["eu"], f"/api/v1/orgs/{world['org'].slug}/projects"
    before = snapshot(eu)
    huge = json.dumps({"name": "x" * (3 * 1024 * 1024)}).encode()
    problem(request(eu.base_url, "POST", path, headers=world["auth"], body=huge), 413, "payload_too_large")
    keyed = {**world["auth"], "Idempotency-Key": '"huge-1"'}
    problem(request(eu.base_url, "POST", path, headers=keyed, body=huge), 413, "payload_too_large")
    anonymous = {"Content-Type": "application/json"}
    problem(
        request(eu.base_url, "POST", "/api/v1/signup", headers=anonymous, body=huge), 413, "payload_too_large"
    )

    deep = b"[" * 100_000 + b"]" * 100_000  # 200 kB: under the size limit, beyond any recursion limit
    deep_object = b'{"name":' * 50_000 + b"1" + b"}" * 50_000
    for body in (deep, deep_object):
        problem(
            request(eu.base_url, "POST", path, headers=world["auth"], body=body), 400, "malformed_request"
        )
        problem(request(eu.base_url, "POST", path, headers=keyed, body=body), 400, "malformed_request")
        for public in ("/api/v1/signup", "/api/v1/auth/login", "/api/v1/auth/token"):
            problem(
                request(eu.base_url, "POST", public, headers=anonymous, body=body), 400, "malformed_request"
            )

    for body in (b'{"name": "\xff\xfe"}', b'{"name": "\xed\xa0\x80"}', b"\xc3\x28", b'{"name": "a\x00"}'):
        answer = request(eu.base_url, "POST", path, headers=world["auth"], body=body)
        assert problem(answer, 400)["code"] in {"malformed_request", "validation_error"}
    # Invalid UTF-8 and NUL in the path and the query string.
    problem(request(eu.base_url, "GET", f"{path}/%ff%fe", headers=world["auth"]), 404, "not_found")
    problem(request(eu.base_url, "GET", f"{path}?name=%ff%00&limit=%ff", headers=world["auth"]), 400)
    assert snapshot(eu) == before


HOSTILE_SLUGS = (
    "' OR 1=1--",
    "../../etc/passwd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "acme%00",
    "acme;DROP TABLE saas_user",
    "..%2f",
)


@pytest.mark.slow
def test_sql_and_path_traversal_in_slugs(world):
    eu = world["eu"]
    before = snapshot(eu)
    for slug in HOSTILE_SLUGS:
        quoted = slug.replace(" ", "%20").replace("'", "%27")
        for target in (
            f"/api/v1/orgs/{quoted}",
            f"/api/v1/orgs/{quoted}/projects",
            f"/api/v1/orgs/acme/projects/{quoted}",
        ):
            problem(request(eu.base_url, "GET", target, headers=world["auth"]), 404, "not_found")
            problem(request(eu.base_url, "DELETE", target, headers=world["auth"]), 404, "not_found")
        raw_slug = slug.replace("%2e", ".").replace("%2f", "/").replace("%00", "\x00")
        for target, body in (
            ("/api/v1/orgs", {"name": "x", "slug": raw_slug}),
            (
                "/api/v1/signup",
                {
                    "email": "mallory@example.test",
                    "password": "a long passphrase 1",
                    "zone": "EU",
                    "organization_name": "x",
                    "organization_slug": raw_slug,
                },
            ),
            (
                "/api/v1/auth/token",
                {"email": "mallory@example.test", "password": "x", "organization": raw_slug},
            ),
        ):
            headers = world["auth"] if target == "/api/v1/orgs" else {"Content-Type": "application/json"}
            answer = request(eu.base_url, "POST", target, headers=headers, body=json.dumps(body).encode())
            assert problem(answer, 400)["code"] == "validation_error", (slug, target)
        assert snapshot(eu) == before, slug
    # The organization the attacks aimed at is untouched and still served.
    assert request(eu.base_url, "GET", "/api/v1/orgs/acme", headers=world["auth"])[0] == 200


@pytest.mark.slow
def test_unknown_region_codes(world):
    eu = world["eu"]
    before = snapshot(eu)
    anonymous = {"Content-Type": "application/json"}
    for choice, field in (
        ({"zone": "XX"}, "zone"),
        ({"region": "xx-nowhere-1"}, "region"),
        (
            {"region": "../eu-west-1"},
            "region",
        ),
        ({"zone": "EU", "region": "eu-west-1"}, "zone"),
    ):
        body = {"email": "mallory@example.test", "password": "a long passphrase 1", **choice}
        answer = request(
            eu.base_url, "POST", "/api/v1/signup", headers=anonymous, body=json.dumps(body).encode()
        )
        assert {e["field"] for e in problem(answer, 400, "validation_error")["errors"]} == {field}
    # A token naming a region that does not exist: 401, not a redirect and not a 500.
    for token in ("sk_xx-nowhere-1_" + "a" * 40, "sk_../../etc_" + "a" * 40, "sk__" + "a" * 40):
        answer = request(eu.base_url, "GET", "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        problem(answer, 401)
    # Region-ish request headers choose nothing: this region answers, for this region's data.
    spoof = {
        **world["auth"],
        "X-Region": "us-east-1",
        "X-Served-By-Region": "us-east-1",
        "X-Region-Origin": "us-east-1",
    }
    status, headers, _ = request(eu.base_url, "GET", "/api/v1/orgs/acme", headers=spoof)
    assert (status, headers["x-served-by-region"]) == (200, "eu-west-1")
    assert snapshot(eu) == before
