"""The local copy of the global directory: who lives where.

It holds no personal data in clear: organization slugs, user ids (UUIDs) and
pseudonymous login keys (HMAC-SHA256 of the normalized email under the
directory secret), each mapped to a home region with a version.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.db import models
from django.utils import timezone

from regions.placement import DataClass


class DirectoryEntry(models.Model):
    data_class: ClassVar[DataClass] = DataClass.DIRECTORY

    class Kind(models.TextChoices):
        ORGANIZATION = "org", "Organization slug"
        USER = "user", "User id"
        LOGIN = "login", "Login key"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    key = models.CharField(max_length=128)
    home_region = models.CharField(max_length=32)
    version = models.BigIntegerField()
    """Monotonic per (kind, key); replicas ignore an older version than they hold."""
    origin_region = models.CharField(max_length=32)
    """The region whose service wrote this version."""
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["kind", "key"], name="residency_directory_kind_key"),
        ]
        verbose_name_plural = "directory entries"

    def __str__(self) -> str:
        return f"{self.kind}:{self.key[:12]} -> {self.home_region}"


class AuditRun(models.Model):
    """One residency audit of this region: its signed report, kept with its history."""

    data_class: ClassVar[DataClass] = DataClass.OPERATIONAL

    class Trigger(models.TextChoices):
        COMMAND = "command", "Management command"
        ADMIN = "admin", "Admin"
        API = "api", "Operator API"
        FLEET = "fleet", "Fleet collection"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    region = models.CharField(max_length=32)
    kind = models.CharField(max_length=8, default="region")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    started_at = models.DateTimeField(default=timezone.now)
    verdict = models.CharField(max_length=16)
    findings = models.PositiveIntegerField(default=0)
    checks = models.JSONField(default=list)
    """Ids of the checks run."""
    document = models.JSONField()
    """The signed report: ``{"report": ..., "signature": ...}``."""

    class Meta:
        ordering: ClassVar = ["-started_at"]

    def __str__(self) -> str:
        return f"audit {self.region} {self.started_at:%Y-%m-%d %H:%M} {self.verdict}"


class ViolationEvent(models.Model):
    """A request that reached a region other than its subject's home region.

    Holds no personal data: regions, the subject's kind, a keyed hash of the
    subject's directory key (never the key itself), the route's template (never
    the path), the method and the decision taken.
    """

    data_class: ClassVar[DataClass] = DataClass.OPERATIONAL
    audit_personal_data_free: ClassVar[bool] = True
    """The audit (RES-06) scans every column of every event for personal data."""

    class Decision(models.TextChoices):
        REDIRECTED = "redirected", "Redirected to the home region"
        UNAVAILABLE = "unavailable", "Home region unavailable (503)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    region = models.CharField(max_length=32)
    """The region the request reached."""
    home_region = models.CharField(max_length=32)
    """The subject's home region according to the directory."""
    target_region = models.CharField(max_length=32, blank=True)
    """Where the request was sent ('' when it was not redirected)."""
    subject_kind = models.CharField(max_length=8)
    """org, user, login or token."""
    subject_hash = models.CharField(max_length=64)
    """HMAC-SHA256 of kind and key under a key derived from DIRECTORY_SECRET (truncated)."""
    method = models.CharField(max_length=8)
    """A standard HTTP method, or OTHER."""
    path_template = models.CharField(max_length=200)
    """The URL pattern that matched, e.g. ``api/v1/orgs/<slug:org_slug>/projects``."""
    decision = models.CharField(max_length=16, choices=Decision.choices)
    status = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ("-occurred_at",)

    def __str__(self) -> str:
        return f"{self.decision} {self.subject_kind} {self.region}->{self.home_region}"
