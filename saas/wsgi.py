"""WSGI entry point (gunicorn ``saas.wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.production")

application = get_wsgi_application()

from regions.boot import assert_boot_checks  # noqa: E402  (needs django.setup())

assert_boot_checks()
