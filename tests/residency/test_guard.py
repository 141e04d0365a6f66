# ruff: noqa: S608 - statements built from module constants
"""The write guard: a resident row of another region is never written here, by any path."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection, models, transaction
from django.test.utils import isolate_apps
from prometheus_client import REGISTRY

from regions.errors import ResidencyViolation
from regions.placement import DataClass
from residency.checks import check_region_anchor
from residency.guard import (
    ANCHOR_TABLE,
    TRIGGER_NAME,
    AnchorMismatch,
    guarded_tables,
    install_write_guard,
    resident_tables,
    verify_anchor,
    write_guard_problems,
)
from saas.models import Organization, User

EMAIL = "margaret.hamilton@apollo-guidance.test"


def blocked_count(table: str) -> float:
    value = REGISTRY.get_sample_value(
        "saas_residency_blocked_writes_total", {"region": "eu-west-1", "table": table}
    )
    return value or 0.0


def org(region: str = "eu-west-1", slug: str | None = None) -> Organization:
    return Organization(
        slug=slug or f"o-{uuid.uuid4().hex[:8]}", name="Org", home_region=region, zone=region[:2].upper()
    )


def refused(fn: Any) -> ResidencyViolation:
    with pytest.raises(ResidencyViolation) as caught, transaction.atomic():
        fn()
    return caught.value


def test_the_orm_cannot_create_a_foreign_row_and_says_so_without_personal_data(db, caplog):
    caplog.set_level(logging.DEBUG)
    before = blocked_count("saas_user")
    error = refused(lambda: User.objects.create(email=EMAIL, name="Margaret", home_region="us-east-1"))
    assert error.code == "residency_violation" and error.status == 409
    assert error.extra == {"table": "saas_user", "region": "eu-west-1"}
    assert blocked_count("saas_user") == before + 1
    logged = [r for r in caplog.records if r.name == "residency.guard"]
    assert logged and "us-east-1" in logged[0].getMessage()
    text = " ".join(f"{r.getMessage()} {r.__dict__.get('residency')}" for r in caplog.records) + str(error)
    assert "margaret" not in text.lower() and "apollo" not in text
    assert not User.objects.filter(email=EMAIL).exists()
    # The home region is allowed, of course.
    User.objects.create(email=EMAIL, home_region="eu-west-1")


def test_bulk_create_with_one_foreign_row_writes_nothing(db):
    refused(lambda: Organization.objects.bulk_create([org(), org("us-east-1"), org()]))
    assert Organization.objects.count() == 0


def test_update_cannot_move_a_row_out_nor_touch_a_foreign_one(db):
    local = org()
    local.save()
    refused(lambda: Organization.objects.filter(pk=local.pk).update(home_region="us-east-1"))
    refused(lambda: Organization.objects.filter(pk=local.pk).update(home_region=""))
    Organization.objects.filter(pk=local.pk).update(name="Renamed")  # local rows stay writable
    local.refresh_from_db()
    assert (local.name, local.home_region) == ("Renamed", "eu-west-1")


def test_raw_sql_through_django_is_refused(db):
    def insert() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO saas_organization (id, slug, name, home_region, zone, created_at) "
                "VALUES (gen_random_uuid(), 'raw', 'Raw', 'us-east-1', 'US', now())"
            )

    error = refused(insert)
    assert "saas_organization" in str(error)


@pytest.fixture
def raw_primary(harness, transactional_db):
    """A psycopg connection straight to the eu-west-1 primary: no Django, no execute wrapper."""
    primary = harness.region("eu-west-1").primary
    with psycopg.connect(primary.dsn(), options="-c saas.region=eu-west-1", autocommit=True) as conn:
        yield conn


INSERT_ORG = (
    "INSERT INTO saas_organization (id, slug, name, home_region, zone, created_at) "
    "VALUES (gen_random_uuid(), %s, 'Raw', %s, 'US', now())"
)


@pytest.mark.parametrize(
    "setup",
    [
        "SET saas.region = 'us-east-1'",  # claim to be the row's region
        "SET session_replication_role = replica",  # what pg_restore and logical replication use
        "RESET saas.region",  # a connection that states no region
    ],
)
def test_sessions_cannot_talk_their_way_past_the_guard(raw_primary, setup):
    raw_primary.execute(setup)
    with pytest.raises(psycopg.Error) as caught:
        raw_primary.execute(INSERT_ORG, ["claimed", "us-east-1"])
    assert caught.value.sqlstate == "RSD01"
    assert raw_primary.execute("SELECT count(*) FROM saas_organization").fetchone() == (0,)


def test_a_connection_for_another_region_cannot_write_even_its_own_region_rows(raw_primary):
    raw_primary.execute("SET saas.region = 'us-east-1'")
    with pytest.raises(psycopg.Error) as caught:
        raw_primary.execute(INSERT_ORG, ["local", "eu-west-1"])
    assert caught.value.sqlstate == "RSD01"
    assert "connection for region us-east-1" in str(caught.value)


def test_copy_is_refused_too(raw_primary):
    with pytest.raises(psycopg.Error) as caught:
        with raw_primary.cursor().copy(
            "COPY saas_organization (id, slug, name, home_region, zone, created_at) FROM STDIN"
        ) as copy:
            copy.write_row([uuid.uuid4(), "copied", "C", "us-east-1", "US", "2026-01-01T00:00:00Z"])
    assert caught.value.sqlstate == "RSD01"


def test_the_anchor_cannot_be_changed(raw_primary):
    for statement in (
        f"UPDATE {ANCHOR_TABLE} SET region = 'us-east-1'",
        f"DELETE FROM {ANCHOR_TABLE}",
        f"TRUNCATE {ANCHOR_TABLE}",
        f"INSERT INTO {ANCHOR_TABLE} (region) VALUES ('us-east-1')",
    ):
        with pytest.raises(psycopg.Error):
            raw_primary.execute(statement)
    assert raw_primary.execute(f"SELECT region FROM {ANCHOR_TABLE}").fetchall() == [("eu-west-1",)]


def test_the_application_role_cannot_switch_the_guard_off(raw_primary, harness):
    """Run as a deployment should: a role with data rights only, owning no table."""
    raw_primary.execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'saas_app') THEN "
        "CREATE ROLE saas_app LOGIN NOSUPERUSER; END IF; END $$"
    )
    raw_primary.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO saas_app")
    dsn = harness.region("eu-west-1").primary.dsn().replace("postgres@", "saas_app@")
    with psycopg.connect(dsn, options="-c saas.region=eu-west-1", autocommit=True) as app:
        for attempt in (
            f"ALTER TABLE saas_organization DISABLE TRIGGER {TRIGGER_NAME}",
            f"DROP TRIGGER {TRIGGER_NAME} ON saas_organization",
            f"CREATE OR REPLACE FUNCTION {TRIGGER_NAME}() RETURNS trigger LANGUAGE sql AS 'SELECT NULL'",
            "SET session_replication_role = replica",
            f"UPDATE {ANCHOR_TABLE} SET region = 'us-east-1'",
        ):
            with pytest.raises(psycopg.Error):
                app.execute(attempt)
        with pytest.raises(psycopg.Error) as caught:
            app.execute(INSERT_ORG, ["app-role", "us-east-1"])
        assert caught.value.sqlstate == "RSD01"
        app.execute(INSERT_ORG, ["app-role", "eu-west-1"])  # its own region's rows: fine
    raw_primary.execute("DELETE FROM saas_organization")


def test_deleting_another_region_s_residue_is_allowed(db):
    from tests.harness.guard import write_guard_suspended

    with write_guard_suspended():
        residue = org("us-east-1")
        residue.save()
    Organization.objects.filter(pk=residue.pk).delete()
    assert not Organization.objects.exists()


def test_every_resident_table_is_guarded(db):
    tables = resident_tables()
    assert {"saas_user", "saas_organization", "saas_project", "saas_document", "saas_apitoken"} <= set(tables)
    assert set(tables) <= guarded_tables(connection)
    assert write_guard_problems(connection) == []


def test_a_resident_table_added_later_is_guarded_by_the_next_migrate(db):
    with isolate_apps("residency"):

        class Invoice(models.Model):
            data_class = DataClass.RESIDENT
            home_region = models.CharField(max_length=32)
            total = models.IntegerField(default=0)

            class Meta:
                app_label = "residency"
                db_table = "residency_test_invoice"

            def __str__(self) -> str:
                return f"invoice {self.pk}"

        with connection.schema_editor() as editor:
            editor.create_model(Invoice)
        assert "residency_test_invoice" not in guarded_tables(connection)
        assert install_write_guard(connection, models=[Invoice]) == ["residency_test_invoice"]
        assert install_write_guard(connection, models=[Invoice]) == []  # idempotent
        Invoice._default_manager.create(home_region="eu-west-1", total=1)
        refused(lambda: Invoice._default_manager.create(home_region="us-east-1", total=2))
        assert Invoice._default_manager.count() == 1


def test_a_database_of_another_region_is_refused_at_migrate(db, settings):
    settings.REGION = "us-east-1"
    with pytest.raises(AnchorMismatch, match="anchored to region eu-west-1"):
        verify_anchor(connection, region="us-east-1")
    [error] = check_region_anchor(databases=["default"])
    assert error.id == "residency.E021"
    assert check_region_anchor(databases=["replica_1"]) == []


def test_the_settings_state_the_region_on_every_connection():
    for alias, config in settings.DATABASES.items():
        assert config["OPTIONS"]["options"] == f"-c saas.region={settings.REGION}", alias
