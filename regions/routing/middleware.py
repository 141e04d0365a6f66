"""Request middleware of the router (places fixed by docs/decisions/0003 and 0008).

- ``ServedByRegionMiddleware`` (outermost): ``X-Served-By-Region`` on every
  response, including redirects and errors produced by other middleware.
- ``RoutingMiddleware`` (after ``SecurityMiddleware``): opens the request's
  unit of work, reads the causal token from the cookie and the
  ``X-Causal-Token`` header, and after the response captures the primary's
  WAL position if the request wrote, returning a fresh token (cookie, header,
  per-user Redis entry). A view that hits the degraded-read cap
  (``regions.routing.limiter``) answers 503 ``read_capacity_exhausted``.

Both work in WSGI and ASGI stacks. Under ASGI the unit's contextvars are set
in the request's own context, which Django copies into every
``sync_to_async`` call it makes for the request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import SimpleLazyObject, empty

from regions.errors import ReadCapacityExhausted
from regions.problems import app_error_response
from regions.routing import tokens
from regions.routing.counters import count_token
from regions.routing.decisions import capture_commit_lsn, inherit_causal_floor
from regions.routing.limiter import release
from regions.routing.lsn import LSN_MAX
from regions.routing.state import RoutingState, outer_state, unit_of_work

SERVED_BY_HEADER = "X-Served-By-Region"

GetResponse = Callable[[HttpRequest], Any]


class ServedByRegionMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        response: HttpResponseBase = self.get_response(request)
        response[SERVED_BY_HEADER] = settings.REGION
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = await self.get_response(request)
        response[SERVED_BY_HEADER] = settings.REGION
        return response


def request_user_id(request: HttpRequest) -> str | None:
    """The authenticated user's id, if known without a database read.

    From a user object already resolved (by ``AuthenticationMiddleware``'s lazy
    user once used, or by DRF, which sets ``request.user``), else from the
    session (server-side, so trusted).
    """
    user: Any = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        user = None if user._wrapped is empty else user._wrapped
    if user is not None and getattr(user, "is_authenticated", False):
        return str(user.pk)
    session: Any = request.__dict__.get("session")
    if session is None:
        return None
    try:
        value = session.get(SESSION_KEY)
    except Exception:  # the session store is down: the session middleware will say so
        return None
    return str(value) if value else None


def start_request(request: HttpRequest) -> tuple[RoutingState, bool]:
    """A fresh state for ``request`` with its causal tokens; also whether the cookie was bad."""
    state = RoutingState(kind="request", user_id=lambda: request_user_id(request))
    bad_cookie = False
    if not settings.DATABASE_REPLICAS:
        return state, bad_cookie
    inherit_causal_floor(state, outer_state())
    cookie = request.COOKIES.get(tokens.cookie_name())
    for source, raw in (("cookie", cookie), ("header", request.META.get(tokens.REQUEST_META_KEY))):
        verdict = tokens.verify(raw)
        if verdict is None:
            continue
        count_token(verdict.outcome)
        if verdict.outcome == "valid":
            state.raise_floor(verdict.lsn)
        elif verdict.outcome == "invalid":
            state.forced_reason = "token_invalid"
            state.causal_outcome = "invalid"
            bad_cookie = bad_cookie or source == "cookie"
    return state, bad_cookie


def finish_request(
    request: HttpRequest, response: HttpResponseBase, state: RoutingState, bad_cookie: bool
) -> None:
    """After the view: hand the client a token for what it wrote (one query, only if it wrote).

    When the primary's WAL position cannot be read (the primary went away), a
    request that succeeded gets ``LSN_MAX``: its write was acknowledged, so
    the client reads from the primary until the token expires. A request that
    failed (5xx) gets no token: it acknowledged no write, and pinning the
    client (and, through the per-user token, every device of the user) to a
    primary that cannot be reached would only turn its replica reads into 503s.
    """
    lsn = capture_commit_lsn(state)
    if lsn == LSN_MAX and response.status_code >= 500:
        lsn = None
    if lsn is None:
        if bad_cookie:
            response.delete_cookie(tokens.cookie_name(), samesite="Lax")
        return
    lsn = max(lsn, state.floor_lsn)
    token = tokens.issue(lsn)
    response.set_cookie(
        tokens.cookie_name(),
        token,
        max_age=tokens.token_ttl_seconds(),
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )
    response[tokens.HEADER] = token
    count_token("issued")
    user_id = request_user_id(request)
    if user_id is not None:
        tokens.user_lsn_raise(user_id, lsn)


class RoutingMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        state, bad_cookie = start_request(request)
        with unit_of_work("request", state):
            try:
                response: HttpResponseBase = self.get_response(request)
                finish_request(request, response, state, bad_cookie)
            finally:
                release(state)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        state, bad_cookie = start_request(request)
        with unit_of_work("request", state):
            try:
                get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
                response = await get_response(request)
                await sync_to_async(finish_request)(request, response, state, bad_cookie)
            finally:
                release(state)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponseBase | None:
        """A view that hit the degraded-read cap answers 503 (problem details), not 500."""
        if isinstance(exception, ReadCapacityExhausted):
            return app_error_response(exception, instance=request.path)
        return None
