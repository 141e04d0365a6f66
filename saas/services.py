"""Writes of the SaaS core. Keyword-only, typed; each one is one transaction.

Rules enforced here (so the API, the admin and scripts share them):
- resident rows are created in this region only (``home_region = settings.REGION``);
- the directory (``residency.services.directory_entry_upsert``) is written in
  the same transaction as the user or organization it describes;
- the role matrix (``saas.policy``) and the last-owner rule;
- no cross-region membership (docs/decisions/0005-no-cross-region-membership.md).

Services are never ``durable``: the idempotency layer runs them inside its own
transaction, so the effect and the idempotency record commit together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from regions.errors import HomeRegionUnavailable, PermissionDenied, ValidationFailed, WrongRegion
from regions.peer_health import peer_status_get
from regions.registry import Region
from regions.routing import best_effort_write
from regions.selectors import current_zone, get_registry
from residency.login_keys import login_key, normalize_email
from residency.models import DirectoryEntry
from residency.selectors import directory_home_region
from residency.services import directory_entry_upsert
from saas.errors import (
    AlreadyMember,
    CrossRegionMembership,
    EmailTaken,
    LastOwner,
    SlugTaken,
    UserNotFound,
)
from saas.models import ApiToken, Document, Membership, Organization, Project, User
from saas.policy import Action, require
from saas.tokens import NewToken, token_generate

Role = Membership.Role

SIGNUP_PATH = "/api/v1/signup"

TOKEN_LAST_USED_RESOLUTION = timedelta(minutes=5)
"""``ApiToken.last_used_at`` is refreshed at most this often (a read must not write each time)."""


def _field_error(field: str, message: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed(
        "One or more fields are invalid.",
        extra={"errors": [{"field": field, "message": message, "code": code}]},
    )


# --- Users ------------------------------------------------------------------------------


def user_create(*, email: str, password: str, name: str = "") -> User:
    """Create a user homed in this region, with their directory entries (user id and login key)."""
    email = normalize_email(email)
    key = login_key(email)
    if directory_home_region(kind=DirectoryEntry.Kind.LOGIN, key=key) is not None:
        raise EmailTaken("An account with this email already exists.")
    user = User(email=email, name=name, home_region=settings.REGION)
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationFailed(
            "One or more fields are invalid.",
            extra={
                "errors": [
                    {"field": "password", "message": message, "code": "password_invalid"}
                    for message in exc.messages
                ]
            },
        ) from None
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save(force_insert=True)
            directory_entry_upsert(
                kind=DirectoryEntry.Kind.USER, key=str(user.id), home_region=user.home_region
            )
            directory_entry_upsert(kind=DirectoryEntry.Kind.LOGIN, key=key, home_region=user.home_region)
    except IntegrityError:
        raise EmailTaken("An account with this email already exists.") from None
    return user


def user_update(*, user: User, name: str | None = None) -> User:
    if name is not None:
        user.name = name
        user.save(update_fields=["name"])
    return user


# --- Organizations ------------------------------------------------------------------------


def organization_create(*, name: str, slug: str, owner: User) -> Organization:
    """Create an organization homed in this region with ``owner`` as its first owner."""
    if owner.home_region != settings.REGION:
        raise CrossRegionMembership(
            f"Your account lives in {owner.home_region}; create the organization there."
        )
    if directory_home_region(kind=DirectoryEntry.Kind.ORGANIZATION, key=slug) is not None:
        raise SlugTaken(f"The slug {slug!r} is taken.")
    organization = Organization(slug=slug, name=name, home_region=settings.REGION, zone=current_zone().code)
    try:
        with transaction.atomic():
            organization.save(force_insert=True)
            Membership.objects.create(
                organization=organization, user=owner, role=Role.OWNER, home_region=settings.REGION
            )
            directory_entry_upsert(
                kind=DirectoryEntry.Kind.ORGANIZATION, key=slug, home_region=organization.home_region
            )
    except IntegrityError:
        raise SlugTaken(f"The slug {slug!r} is taken.") from None
    return organization


def organization_update(*, actor: Membership, name: str | None = None) -> Organization:
    require(actor, Action.ORG_UPDATE)
    organization = actor.organization
    if name is not None:
        organization.name = name
        organization.save(update_fields=["name"])
    return organization


def organization_delete(*, actor: Membership) -> None:
    """Delete an organization and everything it holds.

    Its directory entry stays: the slug remains reserved (directory entries
    are versioned upserts; a tombstone would need a replicated delete).
    """
    require(actor, Action.ORG_DELETE)
    actor.organization.delete()


# --- Members ------------------------------------------------------------------------------


def _lock_organization(organization: Organization) -> None:
    """Serialize membership changes of one organization (the last-owner rule needs it)."""
    Organization.objects.select_for_update().filter(pk=organization.pk).values_list("pk").get()


def _owner_count(organization: Organization) -> int:
    return Membership.objects.filter(organization=organization, role=Role.OWNER).count()


def membership_invite(*, actor: Membership, email: str, role: str = Role.MEMBER) -> Membership:
    """Add an existing user of this region to the actor's organization."""
    require(actor, Action.MEMBER_MANAGE)
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise PermissionDenied("Only owners can grant the owner role.")
    organization = actor.organization
    email = normalize_email(email)
    user = User.objects.filter(email=email, is_active=True).first()
    if user is None:
        home = directory_home_region(kind=DirectoryEntry.Kind.LOGIN, key=login_key(email))
        if home is not None and home != organization.home_region:
            raise CrossRegionMembership(
                "This user's account lives in another region than the organization; "
                "cross-region membership is not supported."
            )
        raise UserNotFound("No active user with this email in this region.")
    if user.home_region != organization.home_region:
        raise CrossRegionMembership("This user's account lives in another region than the organization.")
    try:
        with transaction.atomic():
            return Membership.objects.create(
                organization=organization, user=user, role=role, home_region=organization.home_region
            )
    except IntegrityError:
        raise AlreadyMember("This user is already a member of the organization.") from None


def membership_change_role(*, actor: Membership, membership: Membership, role: str) -> Membership:
    require(actor, Action.MEMBER_MANAGE)
    if Role.OWNER in (role, membership.role) and actor.role != Role.OWNER:
        raise PermissionDenied("Only owners can grant or take away the owner role.")
    with transaction.atomic():
        _lock_organization(membership.organization)
        membership.refresh_from_db(fields=["role"])
        if (
            membership.role == Role.OWNER
            and role != Role.OWNER
            and _owner_count(membership.organization) <= 1
        ):
            raise LastOwner("Make another member an owner first.")
        membership.role = role
        membership.save(update_fields=["role"])
    return membership


def membership_remove(*, actor: Membership, membership: Membership) -> None:
    """Remove a member. Anyone may leave; removing others needs member.manage."""
    leaving = membership.pk == actor.pk
    if not leaving:
        require(actor, Action.MEMBER_MANAGE)
        if membership.role == Role.OWNER and actor.role != Role.OWNER:
            raise PermissionDenied("Only owners can remove an owner.")
    with transaction.atomic():
        _lock_organization(membership.organization)
        membership.refresh_from_db(fields=["role"])
        if membership.role == Role.OWNER and _owner_count(membership.organization) <= 1:
            raise LastOwner("An organization keeps at least one owner; make another member an owner first.")
        ApiToken.objects.filter(organization=membership.organization, user=membership.user).update(
            revoked_at=timezone.now()
        )
        membership.delete()


# --- Projects and documents -------------------------------------------------------------


def _touch(obj: Project | Document) -> None:
    obj.updated_at = timezone.now()


def project_create(*, actor: Membership, name: str) -> Project:
    require(actor, Action.PROJECT_WRITE)
    return Project.objects.create(
        organization=actor.organization, name=name, home_region=actor.organization.home_region
    )


def project_update(*, actor: Membership, project: Project, name: str | None = None) -> Project:
    require(actor, Action.PROJECT_WRITE)
    if name is not None:
        project.name = name
    _touch(project)
    project.save(update_fields=["name", "updated_at"])
    return project


def project_delete(*, actor: Membership, project: Project) -> None:
    require(actor, Action.PROJECT_WRITE)
    project.delete()


def document_create(*, actor: Membership, project: Project, title: str, body: str = "") -> Document:
    require(actor, Action.DOCUMENT_WRITE)
    if project.organization_id != actor.organization.pk:
        raise _field_error("project", "No such project in this organization.", "does_not_exist")
    return Document.objects.create(
        organization=actor.organization,
        project=project,
        title=title,
        body=body,
        created_by=actor.user,
        home_region=actor.organization.home_region,
    )


def document_update(
    *,
    actor: Membership,
    document: Document,
    title: str | None = None,
    body: str | None = None,
    project: Project | None = None,
) -> Document:
    require(actor, Action.DOCUMENT_WRITE)
    if project is not None:
        if project.organization_id != actor.organization.pk:
            raise _field_error("project", "No such project in this organization.", "does_not_exist")
        document.project = project
    if title is not None:
        document.title = title
    if body is not None:
        document.body = body
    _touch(document)
    document.save(update_fields=["project", "title", "body", "updated_at"])
    return document


def document_delete(*, actor: Membership, document: Document) -> None:
    require(actor, Action.DOCUMENT_DELETE)
    document.delete()


# --- API tokens -----------------------------------------------------------------------------


def api_token_create(*, actor: Membership, name: str) -> tuple[ApiToken, NewToken]:
    """Issue a token for the actor in their organization. The raw token is returned once.

    New tokens get the standard tier; operators change tiers in the admin.
    """
    new = token_generate(region=settings.REGION)
    token = ApiToken.objects.create(
        organization=actor.organization,
        user=actor.user,
        name=name,
        prefix=new.prefix,
        token_hash=new.token_hash,
        tier=ApiToken.Tier.STANDARD,
        home_region=actor.organization.home_region,
    )
    return token, new


def api_token_revoke(*, actor: Membership, token: ApiToken) -> None:
    """Owners and admins revoke any token of the organization; anyone revokes their own."""
    if token.user_id != actor.user.pk:
        require(actor, Action.TOKEN_MANAGE)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def api_token_mark_used(*, token: ApiToken) -> None:
    """Refresh ``last_used_at``, at most once per ``TOKEN_LAST_USED_RESOLUTION``."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at < TOKEN_LAST_USED_RESOLUTION:
        return
    # Bookkeeping: a read must not fail because the primary cannot take this write.
    with best_effort_write("refreshing an API token's last_used_at"):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


# --- Signup --------------------------------------------------------------------------------


def signup_region(*, zone: str | None, region: str | None) -> Region:
    """Where a new account lives: the chosen region, or the best region of the chosen zone.

    For a zone: this region when it is in the zone, else the zone's first
    region (registry order) not known to be down. Codes come from the
    registry only.
    """
    registry = get_registry()
    if region is not None:
        found = registry.regions.get(region)
        if found is None:
            raise _field_error("region", f"Unknown region; choose one of {', '.join(registry.codes)}.")
        return found
    if zone is None or zone not in registry.zones:
        raise _field_error("zone", f"Unknown zone; choose one of {', '.join(registry.zones)}.")
    candidates = registry.regions_in_zone(zone)
    if settings.REGION in (candidate.code for candidate in candidates):
        return registry.region(settings.REGION)
    for candidate in candidates:
        if peer_status_get(code=candidate.code).healthy is not False:
            return candidate
    raise HomeRegionUnavailable(
        f"No region of zone {zone} is available; retry later.", headers={"Retry-After": "30"}
    )


@dataclass(frozen=True, slots=True)
class SignupResult:
    user: User
    organization: Organization | None


def signup(
    *,
    email: str,
    password: str,
    name: str = "",
    zone: str | None = None,
    region: str | None = None,
    organization_name: str | None = None,
    organization_slug: str | None = None,
) -> SignupResult:
    """Create an account (and optionally its first organization) in the chosen zone or region.

    Raises ``WrongRegion`` (307 to the target region's signup URL, from the
    registry) when the account belongs in another region.
    """
    target = signup_region(zone=zone, region=region)
    if target.code != settings.REGION:
        raise WrongRegion(region=target.code, location=target.public_link(SIGNUP_PATH))
    with transaction.atomic():
        user = user_create(email=email, password=password, name=name)
        organization = None
        if organization_slug:
            organization = organization_create(
                name=organization_name or organization_slug, slug=organization_slug, owner=user
            )
    return SignupResult(user=user, organization=organization)
