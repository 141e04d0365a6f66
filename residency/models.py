"""The local copy of the global directory: who lives where.

It holds no personal data in clear: organization slugs, user ids (UUIDs) and
pseudonymous login keys (HMAC-SHA256 of the normalized email under the
directory secret), each mapped to a home region with a version.
"""

from __future__ import annotations

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
