"""Exponential backoff with full jitter, capped (AWS Architecture Blog, "Exponential Backoff And Jitter")."""

from __future__ import annotations

import random


def backoff_delay(*, attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (1-based).

    Uniform in ``[0, min(cap, base * 2**(attempt-1))]``.

    Full jitter spreads the retries of many senders evenly instead of letting
    them retry in lockstep; the cap bounds the wait (and keeps every Celery
    countdown below the broker's visibility timeout, see ``checks``).
    """
    ceiling = min(cap, base * 2 ** min(max(attempt - 1, 0), 62))
    return (rng or random).uniform(0.0, ceiling)
