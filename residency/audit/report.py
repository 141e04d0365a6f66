"""Audit reports: build, sign, verify.

A signed report is a JSON document::

    {"report": {...}, "signature": {"alg": "HMAC-SHA256", "key_id": "k1", "value": "<hex>"}}

The signature covers the canonical JSON of ``report`` (sorted keys, no
whitespace, UTF-8). ``alg`` leaves room for asymmetric signatures (Ed25519)
later: verification dispatches on it and refuses algorithms it does not know.
Keys come from ``AUDIT_SIGNING_KEYS`` (``key_id:secret`` pairs, comma
separated): the first signs, every one verifies, which allows rotation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import platform
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

from regions.errors import AppError
from regions.selectors import get_registry
from residency.audit.base import AuditCheck, AuditContext, Status, run_check

REPORT_SCHEMA = "saas.residency-audit/1"
HMAC_ALG = "HMAC-SHA256"


class ReportSignatureError(AppError):
    code = "audit_signature_invalid"
    status = 400
    title = "Audit report signature invalid"


def canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signing_keys() -> list[tuple[str, bytes]]:
    raw: str = getattr(settings, "AUDIT_SIGNING_KEYS", "")
    keys: list[tuple[str, bytes]] = []
    for item in raw.split(","):
        key_id, sep, secret = item.strip().partition(":")
        if sep and key_id and secret:
            keys.append((key_id, secret.encode()))
    return keys


def sign(report: Mapping[str, Any]) -> dict[str, Any]:
    keys = signing_keys()
    if not keys:
        raise ReportSignatureError("No audit signing key is configured (AUDIT_SIGNING_KEYS).")
    key_id, secret = keys[0]
    value = hmac.new(secret, canonical(report), hashlib.sha256).hexdigest()
    return {"report": dict(report), "signature": {"alg": HMAC_ALG, "key_id": key_id, "value": value}}


def verify(document: Any) -> dict[str, Any]:
    """Return the report when the signature is valid; raise ``ReportSignatureError`` otherwise."""
    if not isinstance(document, dict) or not isinstance(document.get("report"), dict):
        raise ReportSignatureError("Not a signed audit report: expected {report, signature}.")
    signature = document.get("signature")
    if not isinstance(signature, dict):
        raise ReportSignatureError("The report carries no signature.")
    if signature.get("alg") != HMAC_ALG:
        raise ReportSignatureError(f"Unsupported signature algorithm {signature.get('alg')!r}.")
    keys = dict(signing_keys())
    secret = keys.get(str(signature.get("key_id")))
    if secret is None:
        raise ReportSignatureError(f"Unknown signing key {signature.get('key_id')!r}.")
    expected = hmac.new(secret, canonical(document["report"]), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(signature.get("value", ""))):
        raise ReportSignatureError(
            "The signature does not match: the report was altered or signed with another key."
        )
    report: dict[str, Any] = document["report"]
    return report


def _now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="seconds")


def build_report(context: AuditContext, checks: Sequence[AuditCheck]) -> dict[str, Any]:
    """Run ``checks`` and assemble an unsigned report."""
    started = _now()
    results = [run_check(check, context) for check in checks]
    registry = get_registry()
    return {
        "schema": REPORT_SCHEMA,
        "kind": "region",
        "region": context.region,
        "zone": context.zone,
        "started_at": started,
        "finished_at": _now(),
        "code_version": getattr(settings, "CODE_VERSION", "unknown"),
        "registry_sha256": registry.digest,
        "environment": {"python": platform.python_version()},
        "summary": summarize(results),
        "checks": results,
    }


def summarize(results: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    results = list(results)
    counts = {str(s): sum(1 for r in results if r["status"] == s) for s in Status}
    findings = sum(int(r["findings"]) for r in results)
    if counts["error"]:
        verdict = Status.ERROR
    elif counts["fail"]:
        verdict = Status.FAIL
    elif counts["incomplete"]:
        verdict = Status.INCOMPLETE
    else:
        verdict = Status.PASS
    return {"verdict": str(verdict), "findings": findings, "checks": len(results), "by_status": counts}


def is_clean(report: Mapping[str, Any]) -> bool:
    """Clean means no violation and no check that failed to run."""
    return str(report["summary"]["verdict"]) in {Status.PASS, Status.INCOMPLETE}
