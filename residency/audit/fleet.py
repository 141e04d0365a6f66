"""Fleet audit: merge the signed reports of several regions into one signed fleet report.

Every region report is verified before it is merged; a region that sent no
report, or one whose signature fails, is flagged and makes the fleet verdict
``error`` (not clean).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from regions.selectors import get_registry
from residency.audit.base import Status
from residency.audit.report import REPORT_SCHEMA, ReportSignatureError, canonical, summarize, verify


def fleet_merge(*, documents: Iterable[tuple[str, Any]], expected_regions: Sequence[str]) -> dict[str, Any]:
    """Merge ``(source, signed document)`` pairs into an unsigned fleet report."""
    regions: dict[str, dict[str, Any]] = {}
    rejected: list[dict[str, str]] = []
    for source, document in documents:
        try:
            report = verify(document)
        except ReportSignatureError as exc:
            rejected.append({"source": source, "reason": exc.detail})
            continue
        if report.get("kind") != "region":
            rejected.append({"source": source, "reason": "not a region report"})
            continue
        code = str(report["region"])
        if code in regions:
            rejected.append({"source": source, "reason": f"second report for {code}"})
            continue
        regions[code] = {
            "region": code,
            "zone": report.get("zone"),
            "started_at": report.get("started_at"),
            "finished_at": report.get("finished_at"),
            "code_version": report.get("code_version"),
            "registry_sha256": report.get("registry_sha256"),
            "summary": report["summary"],
            "checks": report["checks"],
            "signature_key_id": document["signature"]["key_id"],
            "report_sha256": hashlib.sha256(canonical(report)).hexdigest(),
        }
    missing = [code for code in expected_regions if code not in regions]
    all_checks = [check for r in regions.values() for check in r["checks"]]
    summary = summarize(all_checks)
    digests = {r["registry_sha256"] for r in regions.values()}
    registry = get_registry()
    if missing or rejected or len(digests) > 1:
        summary["verdict"] = str(Status.ERROR)
    now = datetime.now(tz=UTC).isoformat(timespec="seconds")
    return {
        "schema": REPORT_SCHEMA,
        "kind": "fleet",
        "started_at": min((r["started_at"] for r in regions.values()), default=now),
        "finished_at": now,
        "code_version": getattr(settings, "CODE_VERSION", "unknown"),
        "registry_sha256": registry.digest,
        "registry_mismatch": len(digests) > 1 or (bool(digests) and registry.digest not in digests),
        "expected_regions": list(expected_regions),
        "missing_regions": missing,
        "rejected": rejected,
        "summary": summary,
        "regions": [regions[c] for c in sorted(regions)],
    }


PEER_REPORT_PATH = "/internal/audit/peer-report"
SIGNATURE_NAMESPACE = "audit"


def fleet_collect(
    *, regions: Sequence[str], check_ids: Sequence[str] | None = None, timeout: float = 120.0
) -> list[tuple[str, Any]]:
    """Each region's signed report: this region's runs here; peers answer the signed internal API.

    A peer that cannot be reached, or answers anything but a report, yields an
    entry the merge rejects, so it shows as missing in the fleet report.
    """
    import json

    import httpx

    from regions.replication.client import signed_post
    from residency.audit.services import audit_run
    from residency.models import AuditRun

    body = json.dumps({"checks": list(check_ids) if check_ids else None}).encode()
    collected: list[tuple[str, Any]] = []
    for code in regions:
        if code == settings.REGION:
            document, _run = audit_run(trigger=AuditRun.Trigger.FLEET, check_ids=check_ids)
            collected.append((code, document))
            continue
        try:
            response = signed_post(peer=code, path=PEER_REPORT_PATH, body=body, timeout=timeout)
        except httpx.HTTPError as exc:
            collected.append((code, {"unreachable": type(exc).__name__}))
            continue
        if response.status_code != 200:
            collected.append((code, {"refused": response.status_code}))
            continue
        try:
            collected.append((code, response.json()))
        except ValueError:
            collected.append((code, {"malformed": True}))
    return collected
