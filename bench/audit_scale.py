"""Residency audit over 1,000,000 resident rows, vs a row-by-row scan of the same rows.

Starts its own PostgreSQL primary and Redis on loopback (no replicas: this
measures the audit's SQL, not replication), loads N documents with
``generate_series`` plus a handful of planted foreign rows, then times:

- the full audit (every check, set-based), median of 3 runs;
- the baseline: RES-01's question answered row by row through the ORM (what a
  naive audit would do), one run.

    .venv/bin/python -m bench.audit_scale            # 1,000,000 rows
    .venv/bin/python -m bench.audit_scale --quick    # 100,000 rows
"""

from __future__ import annotations

import os
import sys
import time

from bench.common import Row, cli, median_of

NAME = "audit_scale"
PLANTED = 7


def _load(rows: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO saas_organization (id, slug, name, home_region, zone, created_at) "
            "SELECT gen_random_uuid(), 'org-' || g, 'Org', 'eu-west-1', 'EU', now() "
            "FROM generate_series(1, 100) g"
        )
        cursor.execute(
            "INSERT INTO saas_project (id, organization_id, name, home_region, created_at, updated_at) "
            "SELECT gen_random_uuid(), o.id, 'p', 'eu-west-1', now(), now() "
            "FROM saas_organization o, generate_series(1, 10)"
        )
        cursor.execute(
            "WITH p AS (SELECT id, organization_id, (row_number() OVER ()) - 1 AS n FROM saas_project) "
            "INSERT INTO saas_document "
            "(id, organization_id, project_id, title, body, home_region, created_at, updated_at) "
            "SELECT gen_random_uuid(), p.organization_id, p.id, 'title ' || g, 'body of document ' || g, "
            "CASE WHEN g <= %s THEN 'us-east-1' ELSE 'eu-west-1' END, now(), now() "
            "FROM generate_series(1, %s) g JOIN p ON p.n = g %% 1000",
            [PLANTED, rows],
        )
        cursor.execute("ANALYZE")


def _audit_seconds() -> tuple[float, int]:
    from residency.audit.base import AuditContext, all_checks
    from residency.audit.report import build_report

    started = time.perf_counter()
    report = build_report(AuditContext.for_this_region(), list(all_checks().values()))
    elapsed = time.perf_counter() - started
    res01 = next(c for c in report["checks"] if c["id"] == "RES-01")
    print(
        f"  audit: {elapsed:.2f}s, documents scanned {res01['evidence']['counts'].get('saas_document.rows')}",
        file=sys.stderr,
    )
    return elapsed, int(res01["findings"])


def _row_by_row_seconds() -> tuple[float, int]:
    from saas.models import Document

    started = time.perf_counter()
    foreign = 0
    for home in Document.objects.values_list("home_region", flat=True).iterator(chunk_size=10_000):
        if home != "eu-west-1":
            foreign += 1
    return time.perf_counter() - started, foreign


def run(quick: bool) -> list[Row]:
    from tests.harness.stack import harness_session

    rows = 100_000 if quick else 1_000_000
    with harness_session(codes=("eu-west-1",), replicas=0) as harness:
        env = harness.region("eu-west-1").env()
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        print(f"loading {rows:,} documents ...", file=sys.stderr)
        from tests.harness.guard import write_guard_suspended

        with write_guard_suspended():  # the planted foreign rows are what the write guard refuses
            _load(rows)
        findings: list[int] = []

        def audit() -> float:
            seconds, found = _audit_seconds()
            findings.append(found)
            return seconds

        audit_median, samples = median_of(3, audit)
        baseline, foreign = _row_by_row_seconds()
        from django.db import connections

        connections.close_all()
    # The audit must find exactly the planted rows, in RES-01.
    correct = all(found == PLANTED for found in findings) and foreign == PLANTED
    return [
        Row(
            benchmark=NAME,
            figure=f"full audit, {rows:,} resident rows",
            value=audit_median,
            unit="s",
            baseline=baseline,
            baseline_label="row-by-row ORM scan of RES-01 only",
            target="<= 10 s",
            passed=audit_median <= 10.0 and correct,
            notes=f"runs {', '.join(f'{s:.2f}' for s in samples)} s; found {findings[0]}/{PLANTED} planted",
        )
    ]


def main() -> None:
    cli(NAME, __doc__, run)


if __name__ == "__main__":
    main()
