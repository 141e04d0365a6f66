"""API tokens: ``sk_<region>_<secret>``, self-describing and stored only as a hash.

The region part lets the residency middleware send a token presented at the
wrong region to its home region *before* authentication, without a database
lookup (``token_home_region``). It is trusted for nothing else: a forged region
only chooses which registry host the client is redirected to.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass

TOKEN_PREFIX = "sk"  # noqa: S105 - the public prefix
SECRET_LENGTH = 40
"""Characters of the random part: 40 base62 characters hold about 238 bits."""
DISPLAY_LENGTH = 10
"""Characters of the secret kept in clear (``ApiToken.prefix``) so people can tell tokens apart."""
_ALPHABET = string.ascii_letters + string.digits
_REGION = r"([a-z]{2}-[a-z]+-[0-9]{1,2})"
_TOKEN_RE = re.compile(rf"^{TOKEN_PREFIX}_{_REGION}_([A-Za-z0-9]{{{SECRET_LENGTH}}})$")
_ANY_TOKEN_RE = re.compile(rf"^{TOKEN_PREFIX}_{_REGION}_([A-Za-z0-9]+)$")
"""Routing accepts any secret: a token of another region is judged there, not here."""


@dataclass(frozen=True, slots=True)
class NewToken:
    raw: str
    """Shown to the client once; never stored."""
    prefix: str
    token_hash: str


def token_hash(raw: str) -> str:
    """SHA-256 of the whole token (hex). Tokens are high-entropy, so a fast hash is enough."""
    return hashlib.sha256(raw.encode()).hexdigest()


def token_generate(*, region: str) -> NewToken:
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))
    raw = f"{TOKEN_PREFIX}_{region}_{secret}"
    return NewToken(
        raw=raw, prefix=raw[: len(raw) - SECRET_LENGTH + DISPLAY_LENGTH], token_hash=token_hash(raw)
    )


def token_is_well_formed(raw: str) -> bool:
    return _TOKEN_RE.match(raw) is not None


def token_home_region(raw: str) -> str | None:
    """The region named by a raw token, or ``None`` when it is not a well-formed token.

    Pure parsing: no database, no registry. The caller checks that the region
    exists in the registry before using it.
    """
    found = _ANY_TOKEN_RE.match(raw.strip())
    return found.group(1) if found else None


def bearer_token(authorization: str | None) -> str | None:
    """The token in an ``Authorization: Bearer <token>`` header, or ``None``."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
