"""Fail at boot, not on a request.

Management commands run the system checks themselves. Long-running processes
(gunicorn through ``saas.wsgi``/``saas.asgi``, Celery through ``saas.celery``)
call ``assert_boot_checks`` once after ``django.setup()``: any error stops the
process with every message at once.
"""

from __future__ import annotations

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


def assert_boot_checks() -> None:
    errors = [
        m
        for m in checks.run_checks(include_deployment_checks=False)
        if m.is_serious() and not m.is_silenced()
    ]
    if errors:
        lines = "\n".join(f"  - {m}" for m in errors)
        raise ImproperlyConfigured(f"Boot checks failed:\n{lines}")
