"""``/health/ready`` and ``/health/startup``: django-health-check views with our report.

The library's ``HealthCheckView`` runs every check concurrently and answers
500 on any failure, in several formats. Probes need more: 503 only for a
*critical* failure, 200 with ``degraded`` otherwise, and one JSON shape that a
load balancer, the kubelet and peer regions all read:

    {"status": "ok" | "degraded" | "unavailable", "region": "eu-west-1", "probe": "ready",
     "checks": [{"name": "replica_1", "status": "ok" | "warning" | "failed", "critical": false,
                 "duration_ms": 3.2, "message": "...", "lag_bytes": 0, ...}, ...]}
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, ClassVar

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from health_check.base import HealthCheckResult
from health_check.exceptions import ServiceWarning
from health_check.views import HealthCheckView

from regions.health import checks
from regions.metrics import HEALTH_CHECK_UP, labels

OK, DEGRADED, UNAVAILABLE = "ok", "degraded", "unavailable"
_UP = {"ok": 1.0, "warning": 0.5, "failed": 0.0}


def check_status(result: HealthCheckResult) -> str:
    if result.error is None:
        return "ok"
    return "warning" if isinstance(result.error, ServiceWarning) else "failed"


def probe_report(*, probe: str, results: Sequence[HealthCheckResult]) -> dict[str, Any]:
    entries = []
    for result in results:
        check: Any = result.check
        status = check_status(result)
        entry: dict[str, Any] = {
            "name": check.name,
            "status": status,
            "critical": bool(check.critical),
            "duration_ms": round(result.time_taken * 1000, 1),
        }
        if result.error is not None:
            entry["message"] = str(result.error.message)
        entry.update(check.details)
        entries.append(entry)
    if any(e["status"] == "failed" and e["critical"] for e in entries):
        overall = UNAVAILABLE
    elif any(e["status"] != "ok" for e in entries):
        overall = DEGRADED
    else:
        overall = OK
    return {"status": overall, "region": settings.REGION, "probe": probe, "checks": entries}


@contextlib.contextmanager
def detached_executor(workers: int) -> Iterator[Executor]:
    """Threads for the synchronous checks that the response never waits for once they time out.

    Under WSGI the async view runs in ``asyncio.run``, whose default executor
    is joined at exit: one hung check would hold the response past its timeout.
    """
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="health")
    try:
        yield executor
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


class ProbeView(HealthCheckView):
    probe: ClassVar[str] = ""

    def get_executor(self) -> contextlib.AbstractContextManager[Executor | None]:
        return detached_executor(workers=4)

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        with self.get_executor() as executor:
            results = await asyncio.gather(*(check.get_result(executor) for check in self.get_checks()))
        report = probe_report(probe=self.probe, results=results)
        for entry in report["checks"]:
            labels(HEALTH_CHECK_UP, probe=self.probe, check=entry["name"]).set(_UP[entry["status"]])
        return JsonResponse(report, status=503 if report["status"] == UNAVAILABLE else 200)


class ReadinessView(ProbeView):
    """This region can serve: primary (critical), replicas with lag, Redis, broker."""

    probe = "ready"

    def get_checks(self) -> Iterator[Any]:
        timeout = float(settings.HEALTH_CHECK_TIMEOUT)
        yield checks.Primary()
        replicas = checks.ReplicaView()
        for alias in settings.DATABASE_REPLICAS:
            yield checks.Replica(alias=alias, view=replicas)
        if settings.REDIS_URL:
            yield checks.RegionRedis(
                client_factory=functools.partial(checks.redis_client_factory, settings.REDIS_URL, timeout)
            )
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            yield checks.Broker()


class StartupView(ProbeView):
    """The process may start taking probes: registry valid, migrations applied, write guard whole."""

    probe = "startup"

    def get_checks(self) -> Iterator[Any]:
        from residency.health import WriteGuard

        yield checks.Registry()
        yield checks.Migrations()
        yield WriteGuard()


ready = ReadinessView.as_view()
startup = StartupView.as_view()
