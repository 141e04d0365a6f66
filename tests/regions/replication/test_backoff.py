"""Exponential backoff with full jitter and a cap."""

from __future__ import annotations

import random

from regions.replication.backoff import backoff_delay


def test_delays_are_jittered_below_an_exponential_ceiling_and_capped():
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (9, 60.0), (200, 60.0)]:
        delays = [backoff_delay(attempt=attempt, base=0.5, cap=60.0, rng=rng) for _ in range(400)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # Full jitter: spread over the whole range, not clustered at the ceiling.
        assert min(delays) < ceiling * 0.1 and max(delays) > ceiling * 0.9
