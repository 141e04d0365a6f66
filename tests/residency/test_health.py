"""The write guard in ``/health/startup``: a region whose guard is not whole does not start."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from residency.guard import TRIGGER_NAME


def startup(client: Client) -> tuple[int, dict[str, dict[str, object]]]:
    response = client.get("/health/startup")
    report = json.loads(response.content)
    return response.status_code, {entry["name"]: entry for entry in report["checks"]}


@pytest.mark.django_db(transaction=True)
def test_startup_reports_the_write_guard_and_fails_when_a_table_lost_it(client, harness):
    status, checks = startup(client)
    assert (status, checks["write_guard"]["status"], checks["write_guard"]["critical"]) == (200, "ok", True)
    primary = harness.region("eu-west-1").primary
    primary.execute(f"ALTER TABLE saas_project DISABLE TRIGGER {TRIGGER_NAME}")
    try:
        status, checks = startup(client)
    finally:
        primary.execute(f"ALTER TABLE saas_project ENABLE ALWAYS TRIGGER {TRIGGER_NAME}")
    assert (status, checks["write_guard"]["status"]) == (503, "failed")
    assert checks["write_guard"]["message"] == "resident table saas_project has no enabled write guard"
    assert startup(client)[0] == 200
