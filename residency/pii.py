"""Detectors for personal data in clear: emails and IP addresses.

Used by the audit to scan stored values, and by tests to scan logs. The
patterns are deliberately broad (false positives are reviewed; false negatives
are a residency failure). PostgreSQL gets the same patterns as POSIX regexes
so scans run set-based in SQL.
"""

from __future__ import annotations

import ipaddress
import re

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
IPV4_RE = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
IPV6_RE = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}(?![0-9A-Fa-f:])")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# POSIX (PostgreSQL ~) equivalents for set-based scans.
PG_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
PG_IPV4 = r"(^|[^0-9.])([0-9]{1,3}\.){3}[0-9]{1,3}([^0-9.]|$)"

_NOT_PERSONAL_IPS = {"127.0.0.1", "0.0.0.0"}  # noqa: S104 - a literal, not a bind address


def find_emails(text: str) -> list[str]:
    return EMAIL_RE.findall(text)


def find_ips(text: str) -> list[str]:
    """IPv4/IPv6 addresses that could identify a client (loopback and unspecified excluded)."""
    found: list[str] = []
    for candidate in IPV4_RE.findall(text) + IPV6_RE.findall(text):
        try:
            address = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if address.is_loopback or address.is_unspecified or candidate in _NOT_PERSONAL_IPS:
            continue
        found.append(candidate)
    return found


def personal_data_in(text: str) -> dict[str, int]:
    """Counts of each kind of personal data found in ``text`` (empty when clean)."""
    counts = {"email": len(find_emails(text)), "ip_address": len(find_ips(text))}
    return {kind: n for kind, n in counts.items() if n}
