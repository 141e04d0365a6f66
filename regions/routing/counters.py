"""The router's counters: ``saas_db_route_total`` (per unit of work) and the causal token outcomes.

A read decision is on the path of every ORM query, and a Prometheus
``inc()`` (label lookup, lock) costs more than the decision itself. So the
router only bumps the unit's own tally (``RoutingState.reasons``, which the
diagnostics show too) and the tally is added to the counter when the unit
ends (``unit_of_work``, ``exit_unit``): one ``inc()`` per distinct reason per
request or task. Code outside any unit (the *ambient* state of a script) has
no end, so its decisions are counted at once.

Both counters keep their labelled children in one cache (a label lookup costs
more than an ``inc()``), cleared when the region (a label of every series)
changes.
"""

from __future__ import annotations

from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from regions.metrics import CAUSAL_TOKEN, DB_ROUTE, labels

_counters: dict[tuple[str, str], Any] = {}
"""Labelled counter children by ``("route", "<target>:<reason>")`` or ``("token", outcome)``."""


def count_route(key: str, amount: int = 1) -> None:
    counter = _counters.get(("route", key))
    if counter is None:
        kind, _, reason = key.partition(":")
        counter = _counters["route", key] = labels(DB_ROUTE, target=kind, reason=reason)
    counter.inc(amount)


def count_token(outcome: str) -> None:
    """``saas_causal_token_total{outcome}``: tokens issued, verified, ahead of the replicas, ..."""
    counter = _counters.get(("token", outcome))
    if counter is None:
        counter = _counters["token", outcome] = labels(CAUSAL_TOKEN, outcome=outcome)
    counter.inc()


def count_routes(reasons: dict[str, int]) -> None:
    """Add a finished unit's tally to ``saas_db_route_total``."""
    for key, amount in reasons.items():
        count_route(key, amount)


@receiver(setting_changed)
def _region_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "REGION":
        _counters.clear()
