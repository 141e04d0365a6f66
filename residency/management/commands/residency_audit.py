"""``manage.py residency_audit``: audit this region's data residency and write a signed report.

Exit status: 0 clean, 1 violations (or a check that could not run, or a report
that fails ``--verify``: evidence that cannot be trusted), 2 bad arguments (an
unknown option or check id, a file that cannot be read).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from regions.selectors import get_registry
from residency.audit.base import AuditContext, all_checks
from residency.audit.fleet import fleet_collect, fleet_merge
from residency.audit.render import FORMATS, extract, render, verify_text
from residency.audit.report import ReportSignatureError, is_clean, sign
from residency.audit.services import audit_run, audit_store
from residency.models import AuditRun


class Command(BaseCommand):
    help = "Audit this region's data residency and write a signed report (JSON, HTML or CSV)."
    # The audit reports on a misconfigured region instead of refusing to start.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=FORMATS, default="json", help="report format (default json)")
        parser.add_argument("--output", metavar="PATH", help="write the report here instead of stdout")
        parser.add_argument(
            "--checks", nargs="+", metavar="ID", help=f"run only these checks ({', '.join(all_checks())})"
        )
        parser.add_argument("--verify", metavar="PATH", help="verify a report file's signature and exit")
        parser.add_argument(
            "--fleet",
            action="store_true",
            help="audit every region (--regions) over the signed internal API and merge the reports",
        )
        parser.add_argument(
            "--fleet-from",
            nargs="+",
            metavar="PATH",
            help="merge these signed region reports into one signed fleet report (verifies each)",
        )
        parser.add_argument(
            "--regions",
            nargs="+",
            metavar="CODE",
            help="regions a fleet report must cover (default: the registry)",
        )
        parser.add_argument("--terraform-plan", metavar="PATH", help="`terraform show -json` plan for RES-08")
        parser.add_argument(
            "--no-store", action="store_true", help="do not keep the report in the audit history"
        )
        parser.add_argument(
            "--progress", action="store_true", help="print progress to stderr (default on a terminal)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["verify"]:
            self._verify(Path(options["verify"]))
            return
        if options["fleet_from"] or options["fleet"]:
            self._fleet(options)
            return
        if options["terraform_plan"] and not Path(options["terraform_plan"]).is_file():
            raise CommandError(f"--terraform-plan {options['terraform_plan']}: no such file", returncode=2)
        show_progress = options["progress"] or sys.stderr.isatty()
        context = AuditContext.for_this_region(
            terraform_plan=options["terraform_plan"],
            progress=(lambda message: self.stderr.write(message)) if show_progress else None,
        )
        try:
            document, _run = audit_run(
                trigger=AuditRun.Trigger.COMMAND,
                check_ids=options["checks"],
                context=context,
                store=not options["no_store"],
            )
        except KeyError as exc:
            raise CommandError(str(exc.args[0]), returncode=2) from None
        self._write(document, options)
        summary = document["report"]["summary"]
        if not is_clean(document["report"]):
            raise CommandError(
                f"residency audit: {summary['verdict']} with {summary['findings']} finding(s)", returncode=1
            )
        self.stderr.write(f"residency audit: {summary['verdict']}, {summary['checks']} checks, 0 findings")

    def _write(self, document: dict[str, Any], options: dict[str, Any]) -> None:
        text = render(document, options["format"])
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="")

    def _fleet(self, options: dict[str, Any]) -> None:
        expected = options["regions"] or list(get_registry().codes)
        unknown = [code for code in expected if code not in get_registry().regions]
        if unknown:
            raise CommandError(f"unknown region(s): {', '.join(unknown)}", returncode=2)
        sources: list[tuple[str, Any]] = []
        for name in options["fleet_from"] or []:
            try:
                sources.append((name, extract(Path(name).read_text(encoding="utf-8"))[0]))
            except OSError as exc:
                raise CommandError(f"cannot read {name}: {exc.strerror}", returncode=2) from None
            except ReportSignatureError as exc:
                sources.append((name, {"unreadable": exc.detail}))
        if options["fleet"]:
            sources += fleet_collect(regions=expected, check_ids=options["checks"])
        document = sign(fleet_merge(documents=sources, expected_regions=expected))
        if not options["no_store"]:
            audit_store(document=document, trigger=AuditRun.Trigger.FLEET)
        self._write(document, options)
        report = document["report"]
        if not is_clean(report):
            missing = ", ".join(report["missing_regions"]) or "none"
            raise CommandError(
                f"fleet audit: {report['summary']['verdict']}, {report['summary']['findings']} finding(s), "
                f"missing regions: {missing}, rejected reports: {len(report['rejected'])}",
                returncode=1,
            )
        self.stderr.write(
            f"fleet audit: {report['summary']['verdict']} across {len(report['regions'])} regions"
        )

    def _verify(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}", returncode=2) from None
        try:
            report = verify_text(text)
        except ReportSignatureError as exc:
            raise CommandError(f"verification FAILED: {exc.detail}", returncode=1) from None
        self.stdout.write(
            f"verified: {report.get('kind', 'region')} report for {report.get('region', 'fleet')} "
            f"at {report.get('finished_at')}, verdict {report['summary']['verdict']}"
        )
