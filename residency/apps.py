from typing import Any

from django.apps import AppConfig
from django.db import connections
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def _install_write_guard(*, using: str = "default", **kwargs: Any) -> None:
    from residency.guard import install_write_guard

    install_write_guard(connections[using])


class ResidencyConfig(AppConfig):
    name = "residency"
    verbose_name = "Residency"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from residency import checks  # noqa: F401  (registers the system checks)
        from residency.guard import attach_execute_wrapper

        connection_created.connect(attach_execute_wrapper, dispatch_uid="residency-write-guard")
        # After every migrate: every resident table (new ones too) gets the guard.
        post_migrate.connect(_install_write_guard, sender=self, dispatch_uid="residency-write-guard")
