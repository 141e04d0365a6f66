"""Core domain models. Every model declares its data class (regions.placement).

Rules of the house:
- Logic lives in ``saas/services.py`` (writes) and ``saas/selectors.py`` (reads);
  models hold fields and constraints only.
- Primary keys are UUIDs: ids are unique across every region (the directory
  maps user ids to home regions) and cannot be enumerated through the API.
- Every resident model carries ``home_region``, denormalized from its
  organization or user, so the residency write guard and the audit can check a
  row without joins.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone

from regions.placement import DataClass


class UserManager(BaseUserManager["User"]):
    """Only what ``createsuperuser`` needs; everything else goes through services."""

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        from django.conf import settings

        extra.setdefault("home_region", settings.REGION)
        return self.create_user(email, password, is_staff=True, is_superuser=True, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Email login; the profile lives in the user's home region."""

    data_class: ClassVar[DataClass] = DataClass.RESIDENT

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254, unique=True)
    """Stored normalized (see residency.login_keys.normalize_email) by the services."""
    name = models.CharField(max_length=200, blank=True)
    home_region = models.CharField(max_length=32, db_index=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    def __str__(self) -> str:
        return f"user {self.pk}"


class Organization(models.Model):
    """A tenant. Its home region holds all of its resident data."""

    data_class: ClassVar[DataClass] = DataClass.RESIDENT

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    home_region = models.CharField(max_length=32, db_index=True)
    zone = models.CharField(max_length=8)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    """A user's role in an organization."""

    data_class: ClassVar[DataClass] = DataClass.RESIDENT

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    home_region = models.CharField(max_length=32, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["organization", "user"], name="saas_membership_unique"),
        ]

    def __str__(self) -> str:
        return f"membership {self.pk}"


class Project(models.Model):
    data_class: ClassVar[DataClass] = DataClass.RESIDENT

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=200)
    home_region = models.CharField(max_length=32, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"project {self.pk}"


class Document(models.Model):
    """Free text that may contain personal data: never leaves its home region."""

    data_class: ClassVar[DataClass] = DataClass.RESIDENT

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="documents")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    home_region = models.CharField(max_length=32, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes: ClassVar = [models.Index(fields=["project", "created_at", "id"])]

    def __str__(self) -> str:
        return f"document {self.pk}"


class ApiToken(models.Model):
    """An API credential scoped to one organization. Only a hash of the secret is stored."""

    data_class: ClassVar[DataClass] = DataClass.RESIDENT

    class Tier(models.TextChoices):
        FREE = "free", "Free"
        STANDARD = "standard", "Standard"
        CRITICAL = "critical", "Critical"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_tokens")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=32, unique=True)
    token_hash = models.CharField(max_length=64, unique=True)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.STANDARD)
    home_region = models.CharField(max_length=32, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token {self.prefix}"


class IdempotencyRecord(models.Model):
    """The stored response of one Idempotency-Key use (see ``saas/idempotency.py``).

    Resident: the response may hold personal data (a document's text), so the
    record lives in the region primary, is written in the same transaction as
    the effect it guards, and is never replicated. The unique ``scope_hash``
    is what makes the effect happen once.
    """

    data_class: ClassVar[DataClass] = DataClass.RESIDENT

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scope_hash = models.CharField(max_length=64, unique=True)
    """SHA-256 over (client, method, route, key): the key is only unique within its scope."""
    client = models.CharField(max_length=80)
    """``token:<id>``, ``user:<id>`` or ``anon:<keyed hash of the client IP>`` (never the IP)."""
    method = models.CharField(max_length=8)
    route = models.CharField(max_length=300)
    fingerprint = models.CharField(max_length=64)
    """SHA-256 of the request body (canonical JSON when the body is JSON)."""
    response_status = models.PositiveSmallIntegerField()
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True)
    home_region = models.CharField(max_length=32, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"idempotency {self.pk}"
