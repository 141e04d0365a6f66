"""Render signed reports as JSON, HTML or CSV, and read them back for ``--verify``.

Every format embeds the signed document. Verification extracts it, checks the
signature, renders the same format again from the verified report and compares
the bytes: a change to the visible HTML or CSV is detected as surely as a
change to the JSON.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from typing import Any

from django.template.loader import render_to_string

from residency.audit.report import ReportSignatureError, canonical, verify

FORMATS = ("json", "html", "csv")
_CSV_MARK = "# signed-report:"
_HTML_RE = re.compile(r'<script type="application/json" id="signed-report">(.*?)</script>', re.S)


def render(document: dict[str, Any], fmt: str) -> str:
    # Render from the canonical form, so a report read back renders byte for byte the same.
    document = json.loads(canonical(document))
    if fmt == "json":
        return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if fmt == "html":
        return _html(document)
    if fmt == "csv":
        return _csv(document)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _embedded(document: dict[str, Any]) -> str:
    return base64.b64encode(canonical(document)).decode()


def _html(document: dict[str, Any]) -> str:
    report = document["report"]
    regions = report.get("regions") or []
    checks = report.get("checks", [])
    if report.get("kind") == "fleet":
        checks = [dict(c, region=r["region"]) for r in regions for c in r.get("checks", [])]
    return render_to_string(
        "residency/audit_report.html",
        {
            "report": report,
            "signature": document["signature"],
            "checks": checks,
            "regions": regions,
            "embedded": _embedded(document),
        },
    )


def _csv(document: dict[str, Any]) -> str:
    report = document["report"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["region", "check_id", "title", "status", "findings", "summary", "samples"])
    rows = report.get("checks", [])
    if report.get("kind") == "fleet":
        rows = [dict(c, region=r["region"]) for r in report.get("regions", []) for c in r.get("checks", [])]
    for check in rows:
        samples = "; ".join(f"{k}: {', '.join(v)}" for k, v in check["evidence"]["samples"].items())
        writer.writerow(
            [
                check.get("region", report.get("region")),
                check["id"],
                check["title"],
                check["status"],
                check["findings"],
                check["summary"],
                samples,
            ]
        )
    writer.writerow([f"{_CSV_MARK} {_embedded(document)}"])
    return out.getvalue()


def extract(text: str) -> tuple[dict[str, Any], str]:
    """The embedded signed document and the format it came in."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            return json.loads(text), "json"
        except ValueError:
            raise ReportSignatureError("The JSON report is not valid JSON.") from None
    match = _HTML_RE.search(text)
    if match:
        return _decode(match.group(1)), "html"
    for line in reversed(text.splitlines()):
        if line.strip('"').startswith(_CSV_MARK):
            return _decode(line.strip('"')[len(_CSV_MARK) :].strip()), "csv"
    raise ReportSignatureError(
        "No signed report found in the file (expected JSON, or HTML/CSV written by the audit)."
    )


def _decode(blob: str) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(base64.b64decode(blob.strip(), validate=True))
    except ValueError:
        raise ReportSignatureError("The embedded signed report is corrupt.") from None
    return document


def verify_text(text: str) -> dict[str, Any]:
    """Verify a rendered report file; raise ``ReportSignatureError`` on any tampering."""
    document, fmt = extract(text)
    report = verify(document)
    if fmt != "json" and render(document, fmt) != text:
        raise ReportSignatureError(
            f"The {fmt.upper()} report differs from its signed content: it was altered."
        )
    if fmt == "json" and json.loads(text) != document:
        raise ReportSignatureError("The JSON report was altered.")
    return report
