"""PostgreSQL WAL positions (LSNs) as integers.

The database returns them as integers (``pg_lsn - '0/0'``), so comparisons on
the hot path are integer comparisons. ``format_lsn`` gives PostgreSQL's text
form (``16/B374D848``) for people.
"""

from __future__ import annotations

LSN_MAX = (1 << 64) - 1
"""An LSN no replica reaches: a token carrying it pins reads to the primary until it expires."""

CURRENT_PRIMARY_LSN_SQL = "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint"
REPLAY_LSN_SQL = "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint"


def format_lsn(value: int) -> str:
    """``0x16B374D848`` -> ``'16/B374D848'``, as PostgreSQL writes it."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """``'16/B374D848'`` -> ``0x16B374D848``. Raises ``ValueError`` on anything else."""
    high, sep, low = text.partition("/")
    if not sep or not high or not low or len(high) > 8 or len(low) > 8:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(high, 16) << 32) | int(low, 16)
