"""Prometheus metrics. Every series carries the ``region`` label.

Declare metrics here, in one place, so names and labels stay consistent. Use
``labels(metric, **labels)`` to add the current region. Exposition (and the
multiprocess collector for gunicorn and Celery) lives with the health and
observability endpoints.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram

M = TypeVar("M", Counter, Gauge, Histogram)


def labels(metric: M, **values: str) -> M:
    """``metric.labels(region=<this region>, **values)``."""
    child: Any = metric.labels(region=settings.REGION, **values)
    return child  # type: ignore[no-any-return]


# --- Read/write routing (regions.routing) --------------------------------------
DB_ROUTE = Counter(
    "saas_db_route_total",
    "Database routing decisions for reads, by target alias kind and reason.",
    ["region", "target", "reason"],
)
DB_FALLBACK = Counter(
    "saas_db_fallback_total",
    "Reads retried elsewhere after a replica failed, by failed alias and outcome.",
    ["region", "alias", "outcome"],
)
CAUSAL_TOKEN = Counter(
    "saas_causal_token_total",
    "Causal tokens seen on requests and tasks, by outcome (fresh, caught_up, invalid, ...).",
    ["region", "outcome"],
)
REPLICA_LAG_BYTES = Gauge(
    "saas_replica_lag_bytes",
    "Replica replay lag in bytes, from the probe.",
    ["region", "alias"],
    multiprocess_mode="max",
)
REPLICA_LAG_SECONDS = Gauge(
    "saas_replica_lag_seconds",
    "Replica replay lag in seconds, from the probe.",
    ["region", "alias"],
    multiprocess_mode="max",
)
REPLICA_UP = Gauge(
    "saas_replica_up",
    "1 when the probe considers the replica usable.",
    ["region", "alias"],
    multiprocess_mode="min",
)

# --- Residency ----------------------------------------------------------------------
RESIDENCY_DECISION = Counter(
    "saas_residency_decisions_total",
    "Residency middleware outcomes for requests with a subject (served, redirected, unavailable).",
    ["region", "decision", "subject_kind"],
)
RESIDENCY_BLOCKED_WRITE = Counter(
    "saas_residency_blocked_writes_total",
    "Writes refused by the residency write guard.",
    ["region", "table"],
)

# --- Rate limits ---------------------------------------------------------------------
RATE_LIMIT_REJECTED = Counter(
    "saas_rate_limit_rejections_total", "Requests refused with 429, by tier.", ["region", "tier"]
)
RATE_LIMIT_BACKEND_ERROR = Counter(
    "saas_rate_limit_backend_errors_total",
    "Rate limit checks that could not reach Redis, by the policy applied (open/closed).",
    ["region", "policy"],
)

# --- Requests, tasks, health (regions.observability, regions.health) -------------------
HTTP_REQUEST_DURATION = Histogram(
    "saas_http_request_duration_seconds",
    "Request latency by route template (URL pattern, never the raw path), method and status.",
    ["region", "route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CELERY_TASKS = Counter(
    "saas_celery_tasks_total",
    "Celery task outcomes (succeeded, failed, retried, revoked, rejected, internal_error) by task name.",
    ["region", "task", "outcome"],
)
CELERY_TASK_DURATION = Histogram(
    "saas_celery_task_duration_seconds",
    "Celery task run time by task name (from task_prerun to task_postrun).",
    ["region", "task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0),
)
HEALTH_CHECK_UP = Gauge(
    "saas_health_check_up",
    "1 when the latest run of a readiness or startup check passed (0.5 when it warned), 0 when it failed.",
    ["region", "probe", "check"],
    multiprocess_mode="mostrecent",
)
# --- Replication (regions.replication) -------------------------------------------------
REPLICATION_BACKLOG = Gauge(
    "saas_replication_backlog_events",
    "Outbox events not yet delivered to a peer.",
    ["region", "peer"],
    multiprocess_mode="mostrecent",
)
REPLICATION_OLDEST_UNSENT = Gauge(
    "saas_replication_oldest_unsent_seconds",
    "Age of the oldest outbox event not yet delivered to a peer (0 when none).",
    ["region", "peer"],
    multiprocess_mode="mostrecent",
)
REPLICATION_DEAD_LETTERS = Gauge(
    "saas_replication_dead_letters",
    "Dead letters waiting for an operator, by peer.",
    ["region", "peer"],
    multiprocess_mode="mostrecent",
)
REPLICATION_BREAKER_STATE = Gauge(
    "saas_replication_breaker_state",
    "Circuit breaker state per peer: 0 closed, 1 half-open, 2 open.",
    ["region", "peer"],
    multiprocess_mode="mostrecent",
)
REPLICATION_SENT = Counter(
    "saas_replication_events_sent_total",
    "Outbox events handled by the drainer, by peer and outcome "
    "(applied, stale, duplicate, superseded, rejected, blocked, dead).",
    ["region", "peer", "outcome"],
)
REPLICATION_BATCHES = Counter(
    "saas_replication_batches_total",
    "Batches sent to peers, by outcome (ok, transport_error).",
    ["region", "peer", "outcome"],
)
REPLICATION_RECEIVED = Counter(
    "saas_replication_events_received_total",
    "Replicated events received from peers, by origin and outcome.",
    ["region", "origin", "outcome"],
)
REPLICATION_APPLY_LAG = Histogram(
    "saas_replication_apply_lag_seconds",
    "From the commit of a change in its origin region to its apply here.",
    ["region", "origin"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
REPLICATION_SIGNATURE_REJECTED = Counter(
    "saas_replication_signature_rejections_total",
    "Inter-region requests refused with 401, by reason code.",
    ["region", "code"],
)
