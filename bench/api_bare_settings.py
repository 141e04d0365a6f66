"""Settings of the baseline server of ``bench.api_throughput``: production, bare DRF.

Every middleware off (``MIDDLEWARE = []``), no admin app (its checks need the
session middleware) and ``bench.api_bare_urls`` as URLconf.
"""

from __future__ import annotations

from settings.production import *  # noqa: F403
from settings.production import INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "django.contrib.admin"]
MIDDLEWARE = []
ROOT_URLCONF = "bench.api_bare_urls"
