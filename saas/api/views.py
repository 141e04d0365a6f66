"""API views: parse the request, call one service or selector, respond.

Errors are raised as ``AppError`` (or DRF exceptions) and rendered by
``regions.problems.api_exception_handler``. Common error responses and headers
are added to the schema by ``saas.api.schema.add_common_responses``.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth import login, logout
from django.db.models import QuerySet
from django.middleware.csrf import get_token
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from regions.errors import NotFound
from regions.routing import primary
from saas import selectors, services
from saas.api import serializers as s
from saas.api.base import ApiView, actor_for
from saas.api.pagination import CreatedCursorPagination
from saas.errors import InvalidCredentials
from saas.models import ApiToken, User
from saas.policy import Action, require

EMPTY = OpenApiResponse(description="Done; no content.")


def paginated(serializer: type[BaseSerializer[Any]], name: str) -> Any:
    return inline_serializer(
        name=name,
        fields={
            "next": serializers.URLField(allow_null=True, help_text="URL of the next page, or null."),
            "previous": serializers.URLField(allow_null=True, help_text="URL of the previous page, or null."),
            "results": serializer(many=True),
        },
    )


PAGE_PARAMS = [
    OpenApiParameter("cursor", str, description="Opaque cursor from `next` or `previous`."),
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": CreatedCursorPagination.max_page_size},
        description="Page size, 1-100 (default 50).",
    ),
]


def page(
    request: Request, view: ApiView, queryset: QuerySet[Any], out: type[BaseSerializer[Any]]
) -> Response:
    paginator = CreatedCursorPagination()
    items = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(out(items, many=True).data)


def created(data: Any, location: str) -> Response:
    return Response(data, status=status.HTTP_201_CREATED, headers={"Location": location})


# --- Accounts ---------------------------------------------------------------------------------


class SignupView(ApiView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        operation_id="signup",
        tags=["accounts"],
        request=s.SignupIn,
        responses={201: s.SignupOut},
        description=(
            "Create an account in the chosen residency **zone** or **region**. When the account "
            "belongs in another region the answer is `307` with `Location` on that region's signup "
            "URL (problem code `wrong_region`): repeat the request there."
        ),
    )
    def post(self, request: Request) -> Response:
        data = s.SignupIn(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.signup(**data.validated_data)
        body = s.SignupOut({"user": result.user, "organization": result.organization}).data
        return created(body, f"/api/v1/users/{result.user.pk}")


class LoginView(ApiView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        operation_id="auth_login",
        tags=["auth"],
        request=s.LoginIn,
        responses={200: s.UserOut},
        description=(
            "Start a session (cookie `sessionid-<region>`). Unsafe requests in a session must send "
            "the CSRF token from the `csrftoken-<region>` cookie in `X-CSRFToken`."
        ),
    )
    def post(self, request: Request) -> Response:
        data = s.LoginIn(data=request.data)
        data.is_valid(raise_exception=True)
        user = selectors.user_authenticate(request=request._request, **data.validated_data)
        if user is None:
            raise InvalidCredentials()
        login(request._request, user)
        get_token(request._request)
        return Response(s.UserOut(user).data)


class LogoutView(ApiView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="auth_logout", tags=["auth"], request=None, responses={204: EMPTY})
    def post(self, request: Request) -> Response:
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenCreateView(ApiView):
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []

    @extend_schema(
        operation_id="auth_token_create",
        tags=["auth"],
        request=s.TokenCreateIn,
        responses={201: s.NewApiTokenOut},
        description="Issue an API token for your membership in one organization. The secret is shown once.",
    )
    def post(self, request: Request) -> Response:
        data = s.TokenCreateIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        user = selectors.user_authenticate(
            request=request._request, email=values["email"], password=values["password"]
        )
        if user is None:
            raise InvalidCredentials()
        # The membership may be moments old (signup, then a token): read it where it was
        # written, as the login does; this request writes the token there next anyway.
        with primary():
            actor = selectors.membership_for_user(user=user, org_slug=values["organization"])
        token, new = services.api_token_create(actor=actor, name=values["name"])
        body = {**s.ApiTokenOut(token).data, "token": new.raw}
        return created(body, f"/api/v1/orgs/{actor.organization.slug}/tokens/{token.pk}")


class MeView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="me", tags=["accounts"], responses={200: s.MeOut})
    def get(self, request: Request) -> Response:
        user: Any = request.user
        only = request.auth.organization if isinstance(request.auth, ApiToken) else None
        memberships = selectors.membership_list_for_user(user=user, only=only)
        return Response(s.MeOut({"user": user, "memberships": memberships}).data)


class UserDetailView(ApiView):
    permission_classes = [IsAuthenticated]

    def _self(self, request: Request, user_id: uuid.UUID) -> User:
        user: Any = request.user
        if user.pk != user_id:
            raise NotFound("No such user.")
        found: User = user
        return found

    @extend_schema(operation_id="user_get", tags=["accounts"], responses={200: s.UserOut})
    def get(self, request: Request, user_id: uuid.UUID) -> Response:
        return Response(s.UserOut(self._self(request, user_id)).data)

    @extend_schema(
        operation_id="user_update", tags=["accounts"], request=s.UserPatchIn, responses={200: s.UserOut}
    )
    def patch(self, request: Request, user_id: uuid.UUID) -> Response:
        user = self._self(request, user_id)
        data = s.UserPatchIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(s.UserOut(services.user_update(user=user, **data.validated_data)).data)


# --- Organizations ----------------------------------------------------------------------


class OrganizationListView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="orgs_list",
        tags=["organizations"],
        parameters=PAGE_PARAMS,
        responses={200: paginated(s.OrganizationOut, "OrganizationPage")},
    )
    def get(self, request: Request) -> Response:
        user: Any = request.user
        only = request.auth.organization if isinstance(request.auth, ApiToken) else None
        return page(request, self, selectors.organization_list(user=user, only=only), s.OrganizationOut)

    @extend_schema(
        operation_id="orgs_create",
        tags=["organizations"],
        request=s.OrganizationIn,
        responses={201: s.OrganizationOut},
        description="Create an organization homed in this region; you become its owner.",
    )
    def post(self, request: Request) -> Response:
        data = s.OrganizationIn(data=request.data)
        data.is_valid(raise_exception=True)
        user: Any = request.user
        organization = services.organization_create(owner=user, **data.validated_data)
        return created(s.OrganizationOut(organization).data, f"/api/v1/orgs/{organization.slug}")


class OrganizationDetailView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="org_get", tags=["organizations"], responses={200: s.OrganizationOut})
    def get(self, request: Request, org_slug: str) -> Response:
        actor = actor_for(request, org_slug)
        require(actor, Action.ORG_READ)
        return Response(s.OrganizationOut(actor.organization).data)

    @extend_schema(
        operation_id="org_update",
        tags=["organizations"],
        request=s.OrganizationPatchIn,
        responses={200: s.OrganizationOut},
    )
    def patch(self, request: Request, org_slug: str) -> Response:
        actor = actor_for(request, org_slug)
        data = s.OrganizationPatchIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(
            s.OrganizationOut(services.organization_update(actor=actor, **data.validated_data)).data
        )

    @extend_schema(operation_id="org_delete", tags=["organizations"], responses={204: EMPTY})
    def delete(self, request: Request, org_slug: str) -> Response:
        services.organization_delete(actor=actor_for(request, org_slug))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Members -------------------------------------------------------------------------------


class MemberListView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="members_list",
        tags=["members"],
        parameters=[s.MemberFilter, *PAGE_PARAMS],
        responses={200: paginated(s.MembershipOut, "MembershipPage")},
    )
    def get(self, request: Request, org_slug: str) -> Response:
        actor = actor_for(request, org_slug)
        require(actor, Action.MEMBER_READ)
        filters = s.parse_filters(s.MemberFilter, request.query_params)
        return page(
            request, self, selectors.member_list(organization=actor.organization, **filters), s.MembershipOut
        )

    @extend_schema(
        operation_id="members_invite",
        tags=["members"],
        request=s.MemberInviteIn,
        responses={201: s.MembershipOut},
        description=(
            "Add an existing user of this region by email. A user homed in another region is "
            "refused with `409 cross_region_membership`."
        ),
    )
    def post(self, request: Request, org_slug: str) -> Response:
        actor = actor_for(request, org_slug)
        data = s.MemberInviteIn(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_invite(actor=actor, **data.validated_data)
        return created(s.MembershipOut(membership).data, f"/api/v1/orgs/{org_slug}/members/{membership.pk}")


class MemberDetailView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="member_get", tags=["members"], responses={200: s.MembershipOut})
    def get(self, request: Request, org_slug: str, member_id: uuid.UUID) -> Response:
        actor = actor_for(request, org_slug)
        require(actor, Action.MEMBER_READ)
        return Response(
            s.MembershipOut(selectors.member_get(organization=actor.organization, member_id=member_id)).data
        )

    @extend_schema(
        operation_id="member_update",
        tags=["members"],
        request=s.MemberPatchIn,
        responses={200: s.MembershipOut},
        description="Change a member's role. Only owners grant or take away `owner`; the last owner stays.",
    )
    def patch(self, request: Request, org_slug: str, member_id: uuid.UUID) -> Response:
        actor = actor_for(request, org_slug)
        membership = selectors.member_get(organization=actor.organization, member_id=member_id)
        data = s.MemberPatchIn(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_change_role(
            actor=actor, membership=membership, **data.validated_data
        )
        return Response(s.MembershipOut(membership).data)

    @extend_schema(
        operation_id="member_remove",
        tags=["members"],
        responses={204: EMPTY},
        description="Remove a member (or leave). The last owner cannot be removed (`409 last_owner`).",
    )
    def delete(self, request: Request, org_slug: str, member_id: uuid.UUID) -> Response:
        actor = actor_for(request, org_slug)
        membership = selectors.member_get(organization=actor.organization, member_id=member_id)
        services.membership_remove(actor=actor, membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Projects --------------------------------------------------------------------------------


class ProjectListView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="projects_list",
        tags=["projects"],
        parameters=[s.ProjectFilter, *PAGE_PARAMS],
        responses={200: paginated(s.ProjectOut, "ProjectPage")},
    )
    def get(self, request: Request, org_slug: str) -> Response:
        actor = actor_for(request, org_slug)
        require(actor, Action.PROJECT_READ)
        filters = s.parse_filters(s.ProjectFilter, request.query_params)
        return page(
            request, self, selectors.project_list(organization=actor.organization, **filters), s.ProjectOut
        )

    @extend_schema(
        operation_id="projects_create", tags=["projects"], request=s.ProjectIn, responses={201: s.ProjectOut}
    )
    def post(self, request: Request, org_slug: str) -> Response:
        actor = actor_for(request, org_slug)
        data = s.ProjectIn(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_create(actor=actor, **data.validated_data)
        return created(s.ProjectOut(project).data, f"/api/v1/orgs/{org_slug}/projects/{project.pk}")


class ProjectDetailView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="project_get", tags=["projects"], responses={200: s.ProjectOut})
    def get(self, request: Request, org_slug: str, project_id: uuid.UUID) -> Response:
        actor = actor_for(request, org_slug)
        require(actor, Action.PROJECT_READ)
        return Response(
            s.ProjectOut(selectors.project_get(organization=actor.organization, project_id=project_id)).data
        )

    @extend_schema(
        operation_id="project_update", tags=["projects"], request=s.ProjectIn, responses={200: s.ProjectOut}
    )
    def patch(self, request: Request, org_slug: str, project_id: uuid.UUID) -> Response:
        actor = actor_for(request, org_slug)
        project = selectors.project_get(organization=actor.organization, project_id=project_id)
        data = s.ProjectIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(
            s.ProjectOut(services.project_update(actor=actor, project=project, **data.validated_data)).data
        )

    @extend_schema(operation_id="project_delete", tags=["projects"], responses={204: EMPTY})
    def delete(self, request: Request, org_slug: str, project_id: uuid.UUID) -> Response:
        actor = actor_for(request, org_slug)
        project = selectors.project_get(organization=actor.organization, project_id=project_id)
        services.project_delete(actor=actor, project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Documents -----------------------------------------------------------------------------


class DocumentListView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="documents_list",
        tags=["documents"],
        parameters=[s.DocumentFilter, *PAGE_PARAMS],
        responses={200: paginated(s.DocumentOut, "DocumentPage")},
    )
    def get(self, request: Request, org_slug: str) -> Response:
        actor = actor_for(request, org_slug)
        require(actor, Action.DOCUMENT_READ)
        filters = s.parse_filters(s.DocumentFilter, request.query_params)
        if "project" in filters:
            filters["project_id"] = filters.pop("project")
        documents = selectors.document_list(organization=actor.organization, **filters)
        return page(request, self, documents, s.DocumentOut)

    @extend_schema(
        operation_id="documents_create",
        tags=["documents"],
        request=s.DocumentIn,
        responses={201: s.DocumentOut},
    )
    def post(self, request: Request, org_slug: str) -> Response:
        actor = actor_for(request, org_slug)
        data = s.DocumentIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        project = _project_field(actor.organization, values.pop("project"))
        document = services.document_create(actor=actor, project=project, **values)
        return created(s.DocumentOut(document).data, f"/api/v1/orgs/{org_slug}/documents/{document.pk}")


def _project_field(organization: Any, project_id: uuid.UUID) -> Any:
    """A project named in a request body: an unknown one is a field error, not a 404 of the URL."""
    try:
        return selectors.project_get(organization=organization, project_id=project_id)
    except NotFound:
        raise serializers.ValidationError(
            {"project": [serializers.ErrorDetail("No such project in this organization.", "does_not_exist")]}
        ) from None


class DocumentDetailView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="document_get", tags=["documents"], responses={200: s.DocumentOut})
    def get(self, request: Request, org_slug: str, document_id: uuid.UUID) -> Response:
        actor = actor_for(request, org_slug)
        require(actor, Action.DOCUMENT_READ)
        document = selectors.document_get(organization=actor.organization, document_id=document_id)
        return Response(s.DocumentOut(document).data)

    @extend_schema(
        operation_id="document_update",
        tags=["documents"],
        request=s.DocumentPatchIn,
        responses={200: s.DocumentOut},
    )
    def patch(self, request: Request, org_slug: str, document_id: uuid.UUID) -> Response:
        actor = actor_for(request, org_slug)
        document = selectors.document_get(organization=actor.organization, document_id=document_id)
        data = s.DocumentPatchIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if "project" in values:
            values["project"] = _project_field(actor.organization, values["project"])
        return Response(
            s.DocumentOut(services.document_update(actor=actor, document=document, **values)).data
        )

    @extend_schema(operation_id="document_delete", tags=["documents"], responses={204: EMPTY})
    def delete(self, request: Request, org_slug: str, document_id: uuid.UUID) -> Response:
        actor = actor_for(request, org_slug)
        document = selectors.document_get(organization=actor.organization, document_id=document_id)
        services.document_delete(actor=actor, document=document)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- API tokens ------------------------------------------------------------------------------


class TokenListView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="tokens_list",
        tags=["auth"],
        parameters=PAGE_PARAMS,
        responses={200: paginated(s.ApiTokenOut, "ApiTokenPage")},
        description="Owners and admins see every token of the organization; members see their own.",
    )
    def get(self, request: Request, org_slug: str) -> Response:
        tokens = selectors.api_token_list(actor=actor_for(request, org_slug))
        return page(request, self, tokens, s.ApiTokenOut)


class TokenDetailView(ApiView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="token_revoke", tags=["auth"], responses={204: EMPTY})
    def delete(self, request: Request, org_slug: str, token_id: uuid.UUID) -> Response:
        actor = actor_for(request, org_slug)
        token = selectors.api_token_get(actor=actor, token_id=token_id)
        services.api_token_revoke(actor=actor, token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)
