"""The Django admin for the SaaS core.

- Every model is registered with search and filters.
- Writes that have rules (directory entries, the last owner, hashed tokens)
  go through the API's services, so the admin edits only plain fields and
  never adds users, organizations, memberships or tokens by hand.
- Every admin page shows the region banner (``templates/admin/base_site.html``).
- Login attempts are throttled per client address and per account
  (``throttled_login``, GCRA in the region's Redis).
"""

from __future__ import annotations

import math
from typing import Any

import redis
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from residency.login_keys import login_key
from saas.models import ApiToken, Document, IdempotencyRecord, Membership, Organization, Project, User
from saas.ratelimit import Tier, backend_error, client_ip_digest, parse_tier, rate_limit_check


class NoAddAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Created through services only (they write the directory and enforce the rules)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(NoAddAdmin):
    list_display = ("email", "name", "home_region", "is_active", "is_staff", "date_joined")
    list_filter = ("home_region", "is_active", "is_staff", "is_superuser")
    search_fields = ("email", "name", "id")
    ordering = ("-date_joined",)
    readonly_fields = ("id", "email", "home_region", "date_joined", "last_login", "password")
    fields = (*readonly_fields, "name", "is_active", "is_staff", "is_superuser", "groups", "user_permissions")
    filter_horizontal = ("groups", "user_permissions")


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    fields = ("user", "role", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Organization)
class OrganizationAdmin(NoAddAdmin):
    list_display = ("slug", "name", "home_region", "zone", "created_at")
    list_filter = ("home_region", "zone")
    search_fields = ("slug", "name", "id")
    readonly_fields = ("id", "slug", "home_region", "zone", "created_at")
    fields = (*readonly_fields, "name")
    inlines = (MembershipInline,)


@admin.register(Membership)
class MembershipAdmin(NoAddAdmin):
    list_display = ("organization", "user", "role", "home_region", "created_at")
    list_filter = ("role", "home_region")
    search_fields = ("organization__slug", "user__email", "id")
    list_select_related = ("organization", "user")
    readonly_fields = ("id", "organization", "user", "role", "home_region", "created_at")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the last-owner rule lives in saas.services.membership_remove


@admin.register(Project)
class ProjectAdmin(NoAddAdmin):
    list_display = ("name", "organization", "home_region", "created_at", "updated_at")
    list_filter = ("home_region", "created_at")
    search_fields = ("name", "organization__slug", "id")
    list_select_related = ("organization",)
    readonly_fields = ("id", "organization", "home_region", "created_at", "updated_at")
    fields = (*readonly_fields, "name")


@admin.register(Document)
class DocumentAdmin(NoAddAdmin):
    list_display = ("title", "organization", "project", "home_region", "created_at")
    list_filter = ("home_region", "created_at")
    search_fields = ("title", "organization__slug", "id")
    list_select_related = ("organization", "project")
    readonly_fields = (
        "id",
        "organization",
        "project",
        "created_by",
        "home_region",
        "created_at",
        "updated_at",
    )
    fields = (*readonly_fields, "title", "body")


@admin.register(ApiToken)
class ApiTokenAdmin(NoAddAdmin):
    list_display = (
        "prefix",
        "name",
        "organization",
        "user",
        "tier",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = ("tier", "home_region", "revoked_at")
    search_fields = ("prefix", "name", "organization__slug", "user__email")
    list_select_related = ("organization", "user")
    readonly_fields = (
        "id",
        "prefix",
        "organization",
        "user",
        "home_region",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    fields = (*readonly_fields, "name", "tier")
    exclude = ("token_hash",)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(NoAddAdmin):
    list_display = ("id", "client", "method", "route", "response_status", "created_at")
    list_filter = ("method", "response_status", "created_at")
    search_fields = ("client", "route", "id")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Login throttling -----------------------------------------------------------------------


def _login_tiers() -> tuple[Tier, Tier]:
    per_client = parse_tier("admin_login_client", settings.ADMIN_LOGIN_RATE_PER_CLIENT, fail_open=False)
    per_account = parse_tier("admin_login_account", settings.ADMIN_LOGIN_RATE_PER_ACCOUNT, fail_open=False)
    return per_client, per_account


def _throttled(request: HttpRequest, retry_after: int | None) -> HttpResponse:
    if retry_after is None:
        message = "Login is unavailable right now: attempts cannot be counted. Try again shortly."
        retry_after = settings.RATE_LIMIT_UNAVAILABLE_RETRY_AFTER
        status = 503
    else:
        message = f"Too many login attempts. Try again in {retry_after} seconds."
        status = 429
    context = {
        **admin.site.each_context(request),
        "title": "Log in",
        "site_header": admin.site.site_header,
        "throttle_message": message,
    }
    response = TemplateResponse(request, "admin/login_throttled.html", context, status=status)
    response["Retry-After"] = str(retry_after)
    return response


def throttled_login(request: HttpRequest) -> HttpResponse:
    """``/admin/login/``: each POST spends one attempt per client address and per account."""
    if request.method == "POST":
        per_client, per_account = _login_tiers()
        buckets = [(per_client, f"ip:{client_ip_digest(request)}")]
        username = request.POST.get("username", "")
        if username:
            buckets.append((per_account, f"login:{login_key(username)}"))
        for tier, key in buckets:
            try:
                decision = rate_limit_check(tier=tier, key=key)
            except redis.RedisError as exc:
                backend_error(tier, exc, what="an admin login")
                return _throttled(request, None)
            if not decision.allowed:
                return _throttled(request, max(1, math.ceil(decision.retry_after)))
    return admin.site.login(request)
