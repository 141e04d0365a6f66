"""Run and store audits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from residency.audit.base import AuditContext, select_checks
from residency.audit.report import build_report, sign
from residency.models import AuditRun


def audit_run(
    *,
    trigger: AuditRun.Trigger,
    check_ids: Sequence[str] | None = None,
    context: AuditContext | None = None,
    store: bool = True,
) -> tuple[dict[str, Any], AuditRun | None]:
    """Run the audit in this region; return the signed document and its stored record."""
    checks = select_checks(check_ids)
    context = context or AuditContext.for_this_region()
    document = sign(build_report(context, checks))
    run = None
    if store:
        run = audit_store(document=document, trigger=trigger)
    return document, run


def audit_store(*, document: dict[str, Any], trigger: AuditRun.Trigger) -> AuditRun:
    report = document["report"]
    checks = [c["id"] for c in report.get("checks", [])]
    return AuditRun.objects.create(
        region=report.get("region") or "fleet",
        kind=report.get("kind", "region"),
        trigger=trigger,
        verdict=report["summary"]["verdict"],
        findings=report["summary"]["findings"],
        checks=checks,
        document=document,
    )
