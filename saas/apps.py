from django.apps import AppConfig


class SaasConfig(AppConfig):
    name = "saas"
    verbose_name = "SaaS core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from saas import checks  # noqa: F401  (registers the system checks)
