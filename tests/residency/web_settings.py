"""A region's real settings, serving the residency test routes (tests/residency/urls.py)."""

from settings.base import *  # noqa: F403

ROOT_URLCONF = "tests.residency.urls"
