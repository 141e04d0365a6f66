"""Reads of the SaaS core. Every tenant-scoped read takes the organization first.

Lookups by id always filter by organization too, so an object of another
organization is simply "not found" (404), whatever its id.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeVar

from django.contrib.auth import authenticate
from django.db.models import Model, OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from regions.errors import NotFound
from regions.routing import primary
from residency.login_keys import normalize_email
from saas.models import ApiToken, Document, Membership, Organization, Project, User
from saas.policy import Action, allows
from saas.tokens import token_hash, token_is_well_formed

M = TypeVar("M", bound=Model)


def _one(queryset: QuerySet[M]) -> M | None:
    """The single row of a lookup by unique key, or ``None`` (no ORDER BY, unlike ``first()``)."""
    rows = list(queryset[:1])
    return rows[0] if rows else None


def user_authenticate(*, request: HttpRequest | None, email: str, password: str) -> User | None:
    """The active user with these credentials, through Django's auth backends.

    Read from the primary: an account created a moment ago may not be on the
    replicas yet, and a login is rare (and writes ``last_login`` anyway).
    """
    with primary():
        user = authenticate(request, email=normalize_email(email), password=password)
    return user if isinstance(user, User) and user.is_active else None


def user_get(*, user_id: uuid.UUID) -> User:
    user = _one(User.objects.filter(pk=user_id, is_active=True))
    if user is None:
        raise NotFound("No such user.")
    return user


def api_token_resolve(*, raw: str) -> ApiToken | None:
    """The live token for a raw value, with its organization, user and the user's current role.

    One query (a second one, on the primary, when a replica does not know the
    token). ``role`` is ``None`` when the user is no longer a member (the token
    then authenticates nobody).
    """
    if not token_is_well_formed(raw):
        return None
    token = _api_token_lookup(raw)
    if token is None:
        # A replica may not have replayed a token created a moment ago: only the
        # primary's "no such token" is final.
        with primary():
            token = _api_token_lookup(raw)
    return token


def _api_token_lookup(raw: str) -> ApiToken | None:
    membership = Membership.objects.filter(organization=OuterRef("organization"), user=OuterRef("user"))
    token = _one(
        ApiToken.objects.select_related("organization", "user")
        .annotate(
            member_role=Subquery(membership.values("role")[:1]),
            member_pk=Subquery(membership.values("pk")[:1]),
        )
        .filter(token_hash=token_hash(raw), revoked_at__isnull=True, user__is_active=True)
    )
    if token is None or getattr(token, "member_role", None) is None:
        return None
    return token


def membership_for_user(*, user: User, org_slug: str) -> Membership:
    """The user's membership in the organization ``org_slug``; 404 when there is none."""
    membership = _one(
        Membership.objects.select_related("organization", "user").filter(
            organization__slug=org_slug, user=user
        )
    )
    if membership is None:
        raise NotFound("No such organization.")
    return membership


def membership_for_token(*, token: ApiToken, org_slug: str) -> Membership:
    """The token's membership, only for the token's own organization (404 for any other)."""
    role: str | None = getattr(token, "member_role", None)
    if token.organization.slug != org_slug or role is None:
        raise NotFound("No such organization.")
    return Membership(
        organization=token.organization,
        user=token.user,
        role=role,
        home_region=token.home_region,
        pk=getattr(token, "member_pk", None),
    )


def organization_list(*, user: User, only: Organization | None = None) -> QuerySet[Organization]:
    orgs = Organization.objects.filter(memberships__user=user).order_by("-created_at", "-id")
    return orgs.filter(pk=only.pk) if only is not None else orgs


def membership_list_for_user(*, user: User, only: Organization | None = None) -> QuerySet[Membership]:
    """The user's memberships, oldest first; with ``only`` (a token's organization), that one alone."""
    memberships = Membership.objects.filter(user=user).select_related("organization").order_by("created_at")
    if only is not None:
        memberships = memberships.filter(organization=only)
    return memberships


def member_list(*, organization: Organization, role: str | None = None) -> QuerySet[Membership]:
    members = Membership.objects.select_related("user").filter(organization=organization)
    return members.filter(role=role) if role else members


def member_get(*, organization: Organization, member_id: uuid.UUID) -> Membership:
    membership = _one(
        Membership.objects.select_related("user", "organization").filter(
            organization=organization, pk=member_id
        )
    )
    if membership is None:
        raise NotFound("No such member.")
    return membership


def project_list(*, organization: Organization, name: str | None = None) -> QuerySet[Project]:
    projects = Project.objects.filter(organization=organization)
    return projects.filter(name__icontains=name) if name else projects


def project_get(*, organization: Organization, project_id: uuid.UUID) -> Project:
    project = _one(Project.objects.filter(organization=organization, pk=project_id))
    if project is None:
        raise NotFound("No such project.")
    return project


def document_list(
    *,
    organization: Organization,
    project_id: uuid.UUID | None = None,
    title: str | None = None,
    created_by: uuid.UUID | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[Document]:
    documents = Document.objects.filter(organization=organization)
    if project_id is not None:
        documents = documents.filter(project_id=project_id)
    if title:
        documents = documents.filter(title__icontains=title)
    if created_by is not None:
        documents = documents.filter(created_by_id=created_by)
    if created_after is not None:
        documents = documents.filter(created_at__gte=created_after)
    if created_before is not None:
        documents = documents.filter(created_at__lt=created_before)
    return documents


def document_get(*, organization: Organization, document_id: uuid.UUID) -> Document:
    document = _one(Document.objects.filter(organization=organization, pk=document_id))
    if document is None:
        raise NotFound("No such document.")
    return document


def api_token_list(*, actor: Membership) -> QuerySet[ApiToken]:
    """Tokens the actor may see: every token of the org with token.manage, else their own."""
    tokens = ApiToken.objects.filter(organization=actor.organization)
    return tokens if allows(actor.role, Action.TOKEN_MANAGE) else tokens.filter(user=actor.user)


def api_token_get(*, actor: Membership, token_id: uuid.UUID) -> ApiToken:
    token = _one(api_token_list(actor=actor).filter(pk=token_id))
    if token is None:
        raise NotFound("No such token.")
    return token
