"""The audit's building blocks: checks, their results and the evidence they gather.

A check is a function registered with ``@audit_check(id=..., title=..., description=...)``.
It receives an ``AuditContext`` and returns a ``CheckResult``: a status, the
number of findings and the evidence it read (counts, sample ids — never
personal data — and the queries or configuration it looked at).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.conf import settings

from regions.selectors import current_region, get_registry


class Status(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - a status, not a password
    FAIL = "fail"
    ERROR = "error"
    """The check could not run (a service down, bad input): the audit is not clean."""
    INCOMPLETE = "incomplete"
    """Nothing wrong was found, but part of the scope could not be read (stated in the evidence)."""


SAMPLE_SIZE = 5
"""How many sample ids a finding carries (ids, never personal data)."""


@dataclass
class Evidence:
    """What a check looked at and what it found."""

    counts: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(sorted(self.counts.items())),
            "samples": {k: list(v) for k, v in sorted(self.samples.items())},
            "queries": list(self.queries),
            "config": dict(sorted(self.config.items())),
            "notes": list(self.notes),
        }


@dataclass
class CheckResult:
    status: Status
    findings: int
    summary: str
    """One plain sentence for a reader who is not an engineer."""
    evidence: Evidence


@dataclass(frozen=True)
class AuditCheck:
    id: str
    title: str
    description: str
    run: Callable[[AuditContext], CheckResult]


@dataclass
class AuditContext:
    """What checks may read. Tests pass their own values to plant violations."""

    region: str
    zone: str
    apps: Apps = global_apps
    terraform_plan: str | None = None
    """Path of a ``terraform show -json`` plan to check instead of the configuration files."""
    log_paths: tuple[str, ...] = ()
    progress: Callable[[str], None] | None = None

    @classmethod
    def for_this_region(cls, **overrides: Any) -> AuditContext:
        region = current_region()
        values: dict[str, Any] = {
            "region": region.code,
            "zone": region.zone,
            "log_paths": tuple(getattr(settings, "AUDIT_LOG_PATHS", ())),
        }
        values.update(overrides)
        return cls(**values)

    def allowed_regions(self) -> set[str]:
        return {r.code for r in get_registry().regions_in_zone(self.zone)}

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)


_REGISTRY: dict[str, AuditCheck] = {}


def audit_check(
    *, id: str, title: str, description: str
) -> Callable[[Callable[[AuditContext], CheckResult]], Callable[[AuditContext], CheckResult]]:
    """Register a check. Ids are stable: reports and dashboards refer to them."""

    def register(func: Callable[[AuditContext], CheckResult]) -> Callable[[AuditContext], CheckResult]:
        if id in _REGISTRY:
            raise ValueError(f"duplicate audit check id {id}")
        _REGISTRY[id] = AuditCheck(id=id, title=title, description=description, run=func)
        return func

    return register


def all_checks() -> Mapping[str, AuditCheck]:
    from residency.audit import checks  # noqa: F401  (registers the checks)

    return dict(sorted(_REGISTRY.items()))


def select_checks(ids: Iterable[str] | None) -> list[AuditCheck]:
    """The checks named by ``ids`` (all when ``None``); raises ``KeyError`` naming unknown ids."""
    available = all_checks()
    if not ids:
        return list(available.values())
    wanted = list(dict.fromkeys(ids))
    unknown = [i for i in wanted if i not in available]
    if unknown:
        raise KeyError(f"unknown check id(s): {', '.join(unknown)}; known: {', '.join(available)}")
    return [available[i] for i in wanted]


def run_check(check: AuditCheck, context: AuditContext) -> dict[str, Any]:
    """Run one check; an exception becomes an ``error`` result with its type, never a crash."""
    context.say(f"[{check.id}] {check.title} ...")
    started = time.perf_counter()
    try:
        result = check.run(context)
    except Exception as exc:
        result = CheckResult(
            status=Status.ERROR,
            findings=0,
            summary=f"The check could not run ({type(exc).__name__}).",
            evidence=Evidence(notes=[f"{type(exc).__name__}: {str(exc)[:300]}"]),
        )
    elapsed = time.perf_counter() - started
    context.say(f"[{check.id}] {result.status} ({result.findings} findings, {elapsed:.2f}s)")
    return {
        "id": check.id,
        "title": check.title,
        "description": check.description,
        "status": str(result.status),
        "findings": result.findings,
        "summary": result.summary,
        "duration_seconds": round(elapsed, 4),
        "evidence": result.evidence.as_dict(),
    }


def verdict(findings: int, *, incomplete: bool = False, errors: int = 0) -> Status:
    if errors:
        return Status.ERROR
    if findings:
        return Status.FAIL
    return Status.INCOMPLETE if incomplete else Status.PASS
