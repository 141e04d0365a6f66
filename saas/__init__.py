"""The SaaS product: Django project wiring plus the core domain (organizations, users, documents)."""

from saas.celery import app as celery_app

__all__ = ["celery_app"]
