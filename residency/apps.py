from django.apps import AppConfig


class ResidencyConfig(AppConfig):
    name = "residency"
    verbose_name = "Residency"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from residency import checks  # noqa: F401  (registers the system checks)
