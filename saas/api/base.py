"""The base of every API view: request limits, idempotency keys, the caller's membership."""

from __future__ import annotations

from typing import Any

from django.db import router, transaction
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from saas import idempotency
from saas.models import ApiToken, IdempotencyRecord, Membership
from saas.ratelimit import client_ip_digest
from saas.selectors import membership_for_token, membership_for_user


def client_identity(request: Request) -> str:
    """The idempotency scope's client: the token, else the session user, else a hash of the IP."""
    if isinstance(request.auth, ApiToken):
        return f"token:{request.auth.pk}"
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return f"anon:{client_ip_digest(request._request)}"


def actor_for(request: Request, org_slug: str) -> Membership:
    """The caller's membership in ``org_slug`` (404 when none; a token sees only its own org)."""
    if isinstance(request.auth, ApiToken):
        return membership_for_token(token=request.auth, org_slug=org_slug)
    user: Any = request.user
    return membership_for_user(user=user, org_slug=org_slug)


class _NotStored(Exception):
    def __init__(self, response: HttpResponseBase) -> None:
        self.response = response


class _Replay(Exception):
    """Another request stored this key's record first: roll our effect back, replay theirs."""

    def __init__(self, stored: idempotency.StoredResponse) -> None:
        self.stored = stored


class ApiView(APIView):
    """DRF's ``APIView`` with the API's policies.

    - Bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` get 413 (DRF's parsers read
      the stream directly and would skip Django's limit).
    - POST and PATCH honour ``Idempotency-Key`` (see ``saas.idempotency``):
      the handler, the response rendering and the stored record share one
      transaction on the region primary.
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if request.method in {"POST", "PUT", "PATCH"}:
            request._request.body  # noqa: B018 - enforces DATA_UPLOAD_MAX_MEMORY_SIZE (413)
        super().initial(request, *args, **kwargs)

    def _handle(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        method = (request.method or "").lower()
        handler = getattr(self, method, self.http_method_not_allowed)
        if method not in self.http_method_names:
            handler = self.http_method_not_allowed
        try:
            response: Response = handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        return response

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # DRF's APIView.dispatch, with the idempotent path between initial() and the handler.
        self.args = args
        self.kwargs = kwargs
        drf_request = self.initialize_request(request, *args, **kwargs)
        self.request = drf_request
        self.headers = self.default_response_headers
        try:
            self.initial(drf_request, *args, **kwargs)
            key = self._idempotency_key(drf_request)
            if key is not None:
                return self._dispatch_idempotent(drf_request, key, *args, **kwargs)
            response = self._handle(drf_request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(drf_request, response, *args, **kwargs)
        return self.response

    def _idempotency_key(self, request: Request) -> str | None:
        if request.method not in idempotency.METHODS:
            return None
        if not hasattr(self, str(request.method).lower()):
            return None  # 405 method_not_allowed comes first, whatever the key
        value = request.headers.get(idempotency.HEADER)
        return None if value is None else idempotency.parse_key(value)

    def _dispatch_idempotent(self, request: Request, key: str, *args: Any, **kwargs: Any) -> HttpResponseBase:
        outcome = idempotency.idempotency_begin(
            client=client_identity(request),
            method=str(request.method),
            route=request.path,
            key=key,
            fingerprint=idempotency.fingerprint(request._request.body),
        )
        if isinstance(outcome, idempotency.StoredResponse):
            return outcome.replay()
        try:
            with transaction.atomic(using=router.db_for_write(IdempotencyRecord)):
                response = self.finalize_response(
                    request, self._handle(request, *args, **kwargs), *args, **kwargs
                )
                if isinstance(response, Response):
                    response.render()
                if not idempotency.is_stored(response.status_code):
                    raise _NotStored(response)
                earlier = idempotency.idempotency_complete(claim=outcome, response=response)
                if earlier is not None:
                    raise _Replay(earlier)
        except _NotStored as not_stored:
            idempotency.idempotency_release(claim=outcome)
            return not_stored.response
        except _Replay as replay:
            return replay.stored.replay()
        except Exception as exc:
            idempotency.idempotency_release(claim=outcome)
            response = self.finalize_response(request, self.handle_exception(exc), *args, **kwargs)
        self.response = response
        return self.response
