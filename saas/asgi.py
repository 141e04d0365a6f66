"""ASGI entry point (``saas.asgi:application``)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.production")

application = get_asgi_application()

from regions.boot import assert_boot_checks  # noqa: E402  (needs django.setup())

assert_boot_checks()
