"""The residency audit: each planted violation is found with its evidence; a clean region has none."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import models
from django.test.utils import isolate_apps, override_settings

from residency.audit.base import AuditContext, all_checks
from residency.audit.render import render, verify_text
from residency.audit.report import ReportSignatureError, build_report, sign
from residency.audit.services import audit_run
from residency.models import AuditRun, DirectoryEntry
from residency.services import directory_entry_apply_remote
from saas.models import Document, Organization, Project, User
from tests.harness.guard import write_guard_suspended
from tests.harness.stack import REPO_ROOT

USER = DirectoryEntry.Kind.USER
# The audit reads the replicas too (RES-04).
pytestmark = pytest.mark.django_db(databases="__all__")


def run(*ids: str, **context) -> dict[str, Any]:
    ctx = AuditContext.for_this_region(**context)
    checks = [all_checks()[i] for i in ids] if ids else list(all_checks().values())
    report = build_report(ctx, checks)
    return {c["id"]: c for c in report["checks"]} | {"_summary": report["summary"]}


def make_tenant(region: str, slug: str) -> Document:
    org = Organization.objects.create(
        slug=slug, name="Org", home_region=region, zone="EU" if region.startswith("eu") else "US"
    )
    project = Project.objects.create(organization=org, name="p", home_region=region)
    return Document.objects.create(organization=org, project=project, title="t", body="b", home_region=region)


@pytest.fixture
def clean_region(db):
    cache.clear()
    user = User.objects.create(email=f"{uuid.uuid4().hex[:8]}@eu.example", home_region="eu-west-1")
    directory_entry_apply_remote(
        kind=USER, key=str(user.id), home_region="eu-west-1", version=1, origin_region="eu-west-1"
    )
    make_tenant("eu-west-1", f"clean-{uuid.uuid4().hex[:6]}")
    return user


def test_a_clean_region_passes_every_check(clean_region, tmp_path):
    """Every check passes: none is left ``incomplete``, so RES-06 gets a real log file to scan.

    The log holds what the app's real JSON formatter wrote while the clean
    region's requests ran (with the user's id, never the email).
    """
    from regions.observability.logs import JsonFormatter

    log = tmp_path / "app.log"
    handler = logging.FileHandler(log)
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    app_logger = logging.getLogger("saas.audit-clean-test")
    app_logger.addHandler(handler)
    app_logger.propagate = False
    try:
        app_logger.info("signup completed", extra={"user_id": str(clean_region.id)})
        app_logger.warning("slow request", extra={"route": "/api/v1/orgs/<slug>", "duration_ms": 812})
    finally:
        app_logger.removeHandler(handler)
        handler.close()
    assert len(log.read_text().splitlines()) == 2
    results = run(log_paths=(str(log),))
    not_passing = {
        i: (c["status"], c["summary"], c["evidence"]["notes"])
        for i, c in results.items()
        if i != "_summary" and c["status"] != "pass"
    }
    assert not_passing == {}
    assert results["_summary"]["findings"] == 0
    assert results["RES-06"]["evidence"]["counts"][f"log:{log}.lines"] == 2
    assert results["RES-01"]["evidence"]["counts"]["saas_document.rows"] >= 1


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_eu_document_stored_in_us_is_found(as_region, multi_region_db):
    with as_region("us-east-1"), write_guard_suspended():
        planted = make_tenant("eu-west-1", "eu-tenant-in-us")
        result = run("RES-01")["RES-01"]
    assert result["status"] == "fail"
    assert str(planted.pk) in result["evidence"]["samples"]["saas_document"]
    assert result["evidence"]["counts"]["saas_document.foreign_or_unset"] == 1
    assert any("saas_document" in q for q in result["evidence"]["queries"])


def test_rows_without_home_region_are_violations(db):
    doc = make_tenant("eu-west-1", "blank-home")
    with write_guard_suspended():
        Document.objects.filter(pk=doc.pk).update(home_region="")
    result = run("RES-01")["RES-01"]
    assert result["status"] == "fail"
    assert result["evidence"]["counts"]["saas_document.no_home_region"] == 1
    assert str(doc.pk) in result["evidence"]["samples"]["saas_document"]


def test_email_in_a_directory_key_is_found(db):
    DirectoryEntry.objects.create(
        kind="login", key="alice@example.com", home_region="eu-west-1", version=1, origin_region="eu-west-1"
    )
    result = run("RES-03")["RES-03"]
    assert result["status"] == "fail"
    assert result["evidence"]["counts"]["directory.violations"] == 1
    assert "alice@example.com" not in json.dumps(result)  # evidence names ids, not the data


@isolate_apps("residency")
def test_model_without_a_data_class_is_found(db):
    from django.apps.registry import Apps

    class Unclassified(models.Model):
        class Meta:
            app_label = "residency"

        def __str__(self) -> str:
            return "unclassified"

    registry: Apps = Unclassified._meta.apps
    result = run("RES-02", apps=registry)["RES-02"]
    assert result["status"] == "fail"
    assert result["evidence"]["samples"]["unclassified"] == ["residency.Unclassified"]


def test_replica_configured_in_another_zone_is_found(db):
    with override_settings(DATABASE_REPLICA_REGIONS={"replica_1": "eu-west-1", "replica_2": "us-east-1"}):
        result = run("RES-04")["RES-04"]
    assert result["status"] == "fail"
    assert result["evidence"]["samples"]["replicas_outside_zone"] == ["replica_2"]
    assert any("outside this region's zone" in n for n in result["evidence"]["notes"])


def test_standby_missing_from_the_configuration_is_found(db):
    with override_settings(
        DATABASE_REPLICAS=["replica_1"], DATABASE_REPLICA_REGIONS={"replica_1": "eu-west-1"}
    ):
        result = run("RES-04")["RES-04"]
    assert result["status"] == "fail"
    assert result["evidence"]["samples"]["unconfigured_standbys"] == ["eu-west-1-replica2"]


def test_clean_replicas_match_pg_stat_replication(db):
    result = run("RES-04")["RES-04"]
    assert result["status"] == "pass", result["evidence"]
    assert result["evidence"]["counts"]["standbys.streaming"] == 2


def test_us_user_data_in_the_eu_cache_is_found(db):
    cache.clear()
    us_user = uuid.uuid4()
    directory_entry_apply_remote(
        kind=USER, key=str(us_user), home_region="us-east-1", version=1, origin_region="us-east-1"
    )
    cache.set(f"profile:{us_user}", {"id": str(us_user), "plan": "pro"})
    try:
        result = run("RES-05")["RES-05"]
    finally:
        cache.clear()
    assert result["status"] == "fail"
    assert result["evidence"]["counts"]["cache.other_zone_entries"] == 1
    assert result["evidence"]["samples"]["cache"] == [f"eu-west-1:1:profile:{us_user} -> us-east-1"]


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_us_user_id_in_a_queued_broker_message_is_found(db):
    """A real Celery message (base64 body inside kombu's JSON envelope) waiting in the broker."""
    import redis as redis_lib

    from saas.celery import app

    us_user = uuid.uuid4()
    directory_entry_apply_remote(
        kind=USER, key=str(us_user), home_region="us-east-1", version=1, origin_region="us-east-1"
    )
    queue = f"audit-plant-{uuid.uuid4().hex[:8]}"
    key = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "") + queue
    broker = redis_lib.Redis.from_url(settings.CELERY_BROKER_URL)
    app.send_task("saas.tasks.nothing_consumes_this", args=[str(us_user)], queue=queue)
    try:
        assert broker.llen(key) == 1, "the message should be waiting in the broker"
        result = run("RES-05")["RES-05"]
    finally:
        broker.delete(*broker.keys(f"*{queue}*"))
    assert result["status"] == "fail"
    assert result["evidence"]["counts"]["broker.other_zone_entries"] == 1
    assert result["evidence"]["samples"]["broker"] == [f"{key} -> us-east-1"]


def test_wildcard_csrf_origin_is_found(db):
    with override_settings(
        CSRF_TRUSTED_ORIGINS=["https://*.saas.example.com"], SESSION_COOKIE_DOMAIN=".saas.example.com"
    ):
        result = run("RES-09")["RES-09"]
    assert result["status"] == "fail" and result["findings"] == 2
    assert any("*.saas.example.com" in n for n in result["evidence"]["notes"])


@pytest.mark.parametrize("fmt", ["json", "html", "csv"])
def test_signed_report_verifies_and_any_tampering_is_detected(clean_region, fmt):
    document, stored = audit_run(trigger=AuditRun.Trigger.COMMAND, check_ids=["RES-02", "RES-09"])
    assert stored is not None and stored.verdict == "pass"
    text = render(document, fmt)
    assert verify_text(text)["region"] == "eu-west-1"
    tampered = text.replace("pass", "fail", 1)
    assert tampered != text
    with pytest.raises(ReportSignatureError):
        verify_text(tampered)


def test_report_signed_with_an_unknown_key_is_rejected(settings):
    settings.AUDIT_SIGNING_KEYS = "other:secret"
    document = sign({"region": "eu-west-1", "summary": {"verdict": "pass"}})
    settings.AUDIT_SIGNING_KEYS = "test-k1:test-audit-signing-secret"
    with pytest.raises(ReportSignatureError, match="Unknown signing key"):
        verify_text(json.dumps(document))


def test_key_rotation_verifies_reports_signed_with_the_previous_key(settings):
    settings.AUDIT_SIGNING_KEYS = "k1:old"
    document = sign({"region": "eu-west-1", "summary": {"verdict": "pass"}})
    settings.AUDIT_SIGNING_KEYS = "k2:new,k1:old"
    assert verify_text(json.dumps(document))["region"] == "eu-west-1"


# --- The command, as operators and cron run it ---------------------------------------


def manage(harness, *args: str, code: str = "eu-west-1") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "residency_audit", *args],
        cwd=REPO_ROOT,
        env=harness.region(code).process_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_command_exit_codes_and_verify(harness, tmp_path: Path, multi_region_db):
    report = tmp_path / "audit.html"
    clean = manage(
        harness, "--format", "html", "--output", str(report), "--checks", "RES-01", "RES-02", "RES-09"
    )
    assert clean.returncode == 0, clean.stderr
    assert "Clean." in report.read_text()
    verified = manage(harness, "--verify", str(report))
    assert verified.returncode == 0 and "verified" in verified.stdout
    report.write_text(report.read_text().replace("Clean.", "Clean!"))
    tampered = manage(harness, "--verify", str(report))
    assert tampered.returncode == 1 and "verification FAILED" in tampered.stderr
    missing = manage(harness, "--verify", str(tmp_path / "no-such-report.json"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr

    bad = manage(harness, "--format", "pdf")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    unknown = manage(harness, "--checks", "RES-99")
    assert unknown.returncode == 2 and "unknown check id" in unknown.stderr

    with write_guard_suspended():
        make_tenant("us-east-1", "us-tenant-in-eu")  # planted on the eu-west-1 primary
    dirty = manage(harness, "--checks", "RES-01", "--no-store")
    assert dirty.returncode == 1
    assert json.loads(dirty.stdout)["report"]["summary"]["findings"] == 3


# --- Admin and operator API ----------------------------------------------------------------


@pytest.fixture
def operator(db):
    return User.objects.create(
        email="ops@eu.example", home_region="eu-west-1", is_staff=True, is_superuser=True
    )


def test_admin_runs_an_audit_keeps_it_and_downloads_it(client, operator, clean_region):
    client.force_login(operator)
    response = client.post("/admin/residency/auditrun/run/")
    assert response.status_code == 302
    run_record = AuditRun.objects.get()
    assert run_record.trigger == "admin" and run_record.region == "eu-west-1"
    listing = client.get("/admin/residency/auditrun/")
    assert listing.status_code == 200 and b"Run audit now" in listing.content
    for fmt in ("json", "html", "csv"):
        download = client.get(f"/admin/residency/auditrun/{run_record.pk}/download/{fmt}/")
        assert download.status_code == 200
        assert verify_text(download.content.decode())["region"] == "eu-west-1"


def test_operator_api_runs_lists_and_renders(client, operator, clean_region):
    client.force_login(operator)
    created = client.post(
        "/internal/audit/runs", {"checks": ["RES-02", "RES-09"]}, content_type="application/json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["report"]["summary"]["verdict"] == "pass"
    listed = client.get("/internal/audit/runs").json()
    assert [r["checks"] for r in listed] == [["RES-02", "RES-09"]]
    html = client.get(f"{created['Location']}?fmt=html")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    bad = client.post("/internal/audit/runs", {"checks": ["RES-99"]}, content_type="application/json")
    assert bad.status_code == 400 and bad["Content-Type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"].startswith("checks")


def test_operator_api_refuses_non_staff(client, clean_region):
    client.force_login(clean_region)
    assert client.post("/internal/audit/runs", {}, content_type="application/json").status_code == 403
    client.logout()
    assert client.get("/internal/audit/runs").status_code in (401, 403)


def test_personal_data_in_application_logs_is_found(db, tmp_path):
    log = tmp_path / "app.log"
    log.write_text(
        '{"level": "INFO", "msg": "request", "user_id": "1b2c", "region": "eu-west-1"}\n'
        '{"level": "INFO", "msg": "login failed for carol@example.org"}\n'
        '{"level": "INFO", "msg": "from 203.0.113.9"}\n'
        '{"level": "INFO", "msg": "bound to 127.0.0.1 at 14:55:02"}\n'
    )
    result = run("RES-06", log_paths=(str(tmp_path / "*.log"),))["RES-06"]
    assert result["status"] == "fail" and result["findings"] == 2
    assert result["evidence"]["samples"][f"log:{log}"] == [f"{log}:2", f"{log}:3"]
    assert "carol" not in json.dumps(result)


def test_logs_not_configured_make_the_check_incomplete_not_clean(db):
    result = run("RES-06", log_paths=())["RES-06"]
    assert result["status"] == "incomplete"
    assert any("AUDIT_LOG_PATHS" in n for n in result["evidence"]["notes"])


# --- Fleet -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_fleet_report_merges_verified_regions_and_flags_missing_and_forged_ones(
    harness, tmp_path, multi_region_db
):
    reports = {}
    for code in ("eu-west-1", "us-east-1"):
        path = tmp_path / f"{code}.json"
        result = manage(harness, "--checks", "RES-02", "RES-09", "--output", str(path), code=code)
        assert result.returncode == 0, result.stderr
        reports[code] = path
    fleet = tmp_path / "fleet.html"
    merged = manage(
        harness,
        "--fleet-from",
        *map(str, reports.values()),
        "--regions",
        "eu-west-1",
        "us-east-1",
        "--format",
        "html",
        "--output",
        str(fleet),
    )
    assert merged.returncode == 0, merged.stderr
    assert manage(harness, "--verify", str(fleet)).returncode == 0
    assert "Fleet of 2 region(s)" in fleet.read_text()

    # A region that did not answer, and a forged report, make the fleet not clean.
    forged = tmp_path / "forged.json"
    document = json.loads(reports["us-east-1"].read_text())
    document["report"]["summary"]["findings"] = 0
    document["report"]["checks"][0]["status"] = "pass"
    document["report"]["region"] = "ap-south-1"
    forged.write_text(json.dumps(document))
    out = tmp_path / "fleet.json"
    incomplete = manage(harness, "--fleet-from", str(reports["eu-west-1"]), str(forged), "--output", str(out))
    assert incomplete.returncode == 1
    report = json.loads(out.read_text())["report"]
    assert report["summary"]["verdict"] == "error"
    assert set(report["missing_regions"]) == {"eu-central-1", "us-east-1", "ap-south-1"}
    assert report["rejected"][0]["source"] == str(forged)


def _event(**values):
    from residency.models import ViolationEvent

    defaults = {
        "region": "eu-west-1",
        "home_region": "us-east-1",
        "target_region": "us-east-1",
        "subject_kind": "org",
        "subject_hash": "ab" * 16,
        "method": "GET",
        "path_template": "api/v1/orgs/<slug:org_slug>",
        "decision": "redirected",
        "status": 307,
    }
    return ViolationEvent.objects.create(**{**defaults, **values})


def test_served_wrong_region_event_is_found(db):
    _event()
    _event(decision="unavailable", target_region="", status=503)
    assert run("RES-07")["RES-07"]["status"] == "pass"
    served = _event(decision="served", target_region="", status=200)
    result = run("RES-07")["RES-07"]
    assert result["status"] == "fail" and result["findings"] == 1
    assert result["evidence"]["samples"]["served"] == [str(served.pk)]


def test_redirect_out_of_the_zone_is_found(db):
    _event(home_region="eu-central-1", target_region="us-east-1")
    result = run("RES-07")["RES-07"]
    assert result["status"] == "fail"
    assert result["evidence"]["counts"]["events.redirected_out_of_zone"] == 1


def test_personal_data_in_a_violation_event_is_found(db):
    event = _event(path_template="api/v1/login/dave@example.com")
    result = run("RES-06", log_paths=())["RES-06"]
    assert result["status"] == "fail"
    assert result["evidence"]["samples"]["residency.violationevent"] == [str(event.pk)]


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_fleet_audit_collects_peer_reports_over_the_signed_internal_api(harness, region_web, multi_region_db):
    import httpx

    from residency.audit.fleet import PEER_REPORT_PATH, fleet_collect, fleet_merge

    region_web("us-east-1")
    collected = fleet_collect(regions=["eu-west-1", "us-east-1"], check_ids=["RES-02", "RES-09"])
    report = fleet_merge(documents=collected, expected_regions=["eu-west-1", "us-east-1"])
    assert [r["region"] for r in report["regions"]] == ["eu-west-1", "us-east-1"]
    assert report["missing_regions"] == [] and report["summary"]["verdict"] == "pass"

    # Unsigned or replayed requests for a peer's report are refused.
    url = harness.region("us-east-1").base_url + PEER_REPORT_PATH
    assert httpx.post(url, content=b"{}", timeout=30).status_code == 401
    # A region that does not answer is flagged, not skipped.
    collected = fleet_collect(regions=["eu-west-1", "eu-central-1"], check_ids=["RES-02"])
    report = fleet_merge(documents=collected, expected_regions=["eu-west-1", "eu-central-1"])
    assert report["missing_regions"] == ["eu-central-1"] and report["summary"]["verdict"] == "error"


def test_directory_cache_entries_for_other_zones_are_not_findings(db):
    from regions.redis import region_redis
    from residency.cache import NAMESPACE

    cache.clear()
    us_user = uuid.uuid4()
    directory_entry_apply_remote(
        kind=USER, key=str(us_user), home_region="us-east-1", version=1, origin_region="us-east-1"
    )
    client = region_redis()
    assert client is not None
    client.set(f"eu-west-1:{NAMESPACE}user:{us_user}", "us-east-1|1|us-east-1")
    try:
        result = run("RES-05")["RES-05"]
    finally:
        cache.clear()
        client.delete(f"eu-west-1:{NAMESPACE}user:{us_user}")
    assert result["status"] == "pass", result["evidence"]


# --- RES-08: Terraform ---------------------------------------------------------------------


def test_terraform_plan_in_zone_passes_and_a_standby_outside_the_zone_fails(tmp_path):
    from tests.residency.test_terraform_plan import eu_plan

    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(eu_plan()))
    bad.write_text(
        json.dumps(eu_plan(standby_region="us-east-1", replica_source="arn:aws:rds:eu-west-1:1:db:x"))
    )
    passed = run("RES-08", terraform_plan=str(good))["RES-08"]
    assert passed["status"] == "pass", passed["evidence"]["notes"]
    assert passed["evidence"]["counts"]["copies_and_replicas"] == 1
    failed = run("RES-08", terraform_plan=str(bad))["RES-08"]
    assert failed["status"] == "fail"
    assert (
        "module.region.module.standby[0].aws_db_instance.standby"
        in failed["evidence"]["samples"]["resources"]
    )


def test_terraform_configuration_naming_a_region_outside_the_zone_fails(tmp_path, settings):
    import shutil

    copy = tmp_path / "terraform"
    shutil.copytree(REPO_ROOT / "terraform", copy, ignore=shutil.ignore_patterns(".terraform", "*.tfstate*"))
    assert run("RES-08")["RES-08"]["status"] == "pass"
    settings.AUDIT_TERRAFORM_DIR = str(copy)
    assert run("RES-08")["RES-08"]["status"] == "pass"
    main = copy / "modules" / "region" / "main.tf"
    main.write_text(
        main.read_text()
        + '\nlocals {\n  # us-east-1 in a comment is fine\n  backup_copy_region = "us-east-1"\n}\n'
    )
    result = run("RES-08")["RES-08"]
    assert result["status"] == "fail"
    assert result["evidence"]["samples"]["literal_regions_outside_zone"] == ["region/main.tf: us-east-1"]
    settings.AUDIT_TERRAFORM_DIR = str(tmp_path / "nowhere")
    assert run("RES-08")["RES-08"]["status"] == "incomplete"


def test_email_name_ip_address_and_extra_field_in_outbox_payloads_are_found(db):
    from regions.replication.models import DeadLetter, OutboxEvent

    User.objects.create(email="erin@eu.example", name="Erin Example", home_region="eu-west-1")
    payload = {
        "kind": "org",
        "key": "acme",
        "home_region": "eu-west-1",
        "version": 1,
        "origin_region": "eu-west-1",
    }

    def planted(shard: str, **changes: str) -> OutboxEvent:
        return OutboxEvent.objects.create(
            event_type="directory.entry",
            shard_key=f"org:{shard}",
            object_key=f"org:{shard}",
            target_region="us-east-1",
            payload={**payload, **changes},
        )

    clean = planted("acme")
    with_email = planted("x", key="erin@eu.example")
    with_name = planted("y", key="Erin Example")
    with_ip = planted("w", origin_region="203.0.113.42")
    with_field = planted("z", note="vip")
    result = run("RES-03")["RES-03"]
    assert result["status"] == "fail"
    flagged = set(result["evidence"]["samples"]["regions.outboxevent"])
    assert flagged == {str(with_email.pk), str(with_name.pk), str(with_ip.pk), str(with_field.pk)}
    assert str(clean.pk) not in flagged
    assert result["evidence"]["counts"]["regions.deadletter.violations"] == 0
    assert DeadLetter.objects.count() == 0
    assert "erin" not in json.dumps(result).lower()
