"""Finding a request's residency subject: whose data does this request touch?

In order (docs/decisions/0003-cross-package-contracts.md):

1. the organization slug in the URL (kwarg ``org_slug``);
2. the user id in the URL (kwarg ``user_id``);
3. the session's user (read from the session, without loading the user);
4. an API token, whose home region is part of the token (``sk_<region>_<secret>``),
   so it is redirected before authentication and without a database read;
5. for the login and token endpoints, the login key of the posted email.

The subject's key is a directory key: a slug, a UUID or a login key. It is
never logged; violation events store a keyed hash of it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from django.http.request import RawPostDataException

from regions.jsonbody import json_loads
from regions.selectors import get_registry
from residency.login_keys import login_key
from residency.selectors import directory_lookup
from saas.tokens import TOKEN_PREFIX, token_home_region

_TOKEN_START = f"{TOKEN_PREFIX}_"
_AUTH_SCHEMES = ("bearer", "token")
_MAX_EMAIL_LENGTH = 254


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str
    """``org``, ``user``, ``login`` (directory kinds) or ``token``."""
    key: str
    """The directory key, or for a token the region named in it. Never logged."""

    def home_region(self) -> str | None:
        if self.kind == "token":
            return self.key
        return directory_lookup(kind=self.kind, key=self.key)

    def hashed(self) -> str:
        """A keyed, truncated hash of the subject: correlates events without revealing the subject."""
        secret = f"residency-event:{settings.DIRECTORY_SECRET}".encode()
        return hmac.new(secret, f"{self.kind}:{self.key}".encode(), hashlib.sha256).hexdigest()[:32]


def token_region(raw: str) -> str | None:
    """The region named by a self-describing API token, if the registry lists it."""
    region = token_home_region(raw)
    return region if region is not None and region in get_registry().regions else None


def _bearer_token(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION")
    if not header:
        return None
    scheme, _, credentials = str(header).partition(" ")
    credentials = credentials.strip()
    if scheme.lower() not in _AUTH_SCHEMES or not credentials.startswith(_TOKEN_START):
        return None
    return credentials


def _posted_email(request: HttpRequest) -> str | None:
    """The ``email`` field of a JSON or form body, without raising on bad input."""
    try:
        if request.content_type == "application/json":
            data = json_loads(request.body or b"null")
            value = data.get("email") if isinstance(data, dict) else None
        elif request.content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
            request.body  # noqa: B018 - read (size-limited) first, so the view can still read it
            value = request.POST.get("email")
        else:
            return None
    except (RequestDataTooBig, RawPostDataException, ValueError, UnicodeDecodeError):
        return None  # the view reports bad input; residency has no subject
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_EMAIL_LENGTH:
        return None
    return value


def login_paths() -> frozenset[str]:
    paths: tuple[str, ...] = getattr(
        settings, "RESIDENCY_LOGIN_PATHS", ("/api/v1/auth/login", "/api/v1/auth/token")
    )
    return frozenset(p.rstrip("/") for p in paths)


def find_subject(
    request: HttpRequest, view_kwargs: Mapping[str, Any], *, logins: frozenset[str]
) -> Subject | None:
    """The request's subject, in the contract's order, or ``None``."""
    slug = view_kwargs.get("org_slug")
    if slug:
        return Subject("org", str(slug))
    user_id = view_kwargs.get("user_id")
    if user_id:
        return Subject("user", str(user_id))
    if settings.SESSION_COOKIE_NAME in request.COOKIES:
        session = getattr(request, "session", None)
        session_user = session.get(SESSION_KEY) if session is not None else None
        if session_user:
            return Subject("user", str(session_user))
    token = _bearer_token(request)
    if token is not None:
        region = token_region(token)
        if region is not None:
            return Subject("token", region)
    if request.method == "POST" and request.path_info.rstrip("/") in logins:
        email = _posted_email(request)
        if email is not None:
            return Subject("login", login_key(email))
    return None
