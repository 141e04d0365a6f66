"""Core domain models. Every model declares its data class (regions.placement)."""

from __future__ import annotations

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

    email = models.EmailField(unique=True)
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
