"""API authentication: bearer API tokens first, then Django sessions (with CSRF)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from saas.models import ApiToken, User
from saas.selectors import api_token_resolve
from saas.services import api_token_mark_used
from saas.tokens import bearer_token

_UNRESOLVED: Any = object()


class BearerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer sk_<region>_<secret>``.

    The rate limit middleware already resolved the token (one query, with the
    user's role); it is reused from ``request.api_token`` when present.
    """

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        raw = bearer_token(request.META.get("HTTP_AUTHORIZATION"))
        if raw is None:
            return None
        token: ApiToken | None = getattr(request._request, "api_token", _UNRESOLVED)
        if token is _UNRESOLVED:
            token = api_token_resolve(raw=raw)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
        api_token_mark_used(token=token)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
