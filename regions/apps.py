from django.apps import AppConfig


class RegionsConfig(AppConfig):
    name = "regions"
    verbose_name = "Regions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from regions import checks  # noqa: F401  (registers the system checks)
        from regions.observability import checks as observability_checks  # noqa: F401
        from regions.replication import checks as replication_checks  # noqa: F401
        from regions.routing import (
            celery_signals,  # noqa: F401  (connects the Celery signals)
            writes,  # noqa: F401  (watches the primary for writes)
        )
        from regions.routing import checks as routing_checks  # noqa: F401  (registers the checks)
