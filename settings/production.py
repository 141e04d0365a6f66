"""Production settings: the base settings, made strict.

No setting exists only here: this module only changes values and refuses
unsafe ones. ``manage.py check --deploy`` passes with no warnings.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from settings.base import *  # noqa: F403
from settings.base import env

# No default region in production: a missing REGION fails the boot checks
# (regions.E020), which list the valid codes.
if env.optional("REGION") is None:
    REGION = ""

SECRET_KEY = env.str("SECRET_KEY")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters in production.")
DIRECTORY_SECRET = env.str("DIRECTORY_SECRET")
AUDIT_SIGNING_KEYS = env.str("AUDIT_SIGNING_KEYS")
REPLICATION_SIGNING_KEYS = env.list("REPLICATION_SIGNING_KEYS")
if not REPLICATION_SIGNING_KEYS:
    raise ImproperlyConfigured("REPLICATION_SIGNING_KEYS is required in production (the first key signs).")

DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production (unset DEBUG or set DEBUG=false).")

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("TRUST_X_FORWARDED_PROTO", default=True) else None
)
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
