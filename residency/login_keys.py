"""Pseudonymous login keys: the directory never stores an email in clear."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

from django.conf import settings


def normalize_email(email: str) -> str:
    """Case-fold and NFKC-normalize the whole address, strip surrounding space."""
    return unicodedata.normalize("NFKC", email.strip()).casefold()


def login_key(email: str) -> str:
    """HMAC-SHA256 of the normalized email under ``DIRECTORY_SECRET`` (hex)."""
    secret: str = settings.DIRECTORY_SECRET
    return hmac.new(secret.encode(), normalize_email(email).encode(), hashlib.sha256).hexdigest()
