"""The router sees a unit's writes in the statements sent to the primary."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection, router

from regions.routing import unit_of_work
from regions.routing.state import RoutingState
from regions.routing.writes import is_write
from saas.models import Membership, User


@pytest.mark.parametrize(
    ("sql", "write"),
    [
        ('SELECT "saas_user"."id" FROM "saas_user"', False),
        ("  (SELECT 1) UNION (SELECT 2)", False),
        ('SELECT 1 FROM "saas_user" FOR UPDATE', False),
        ('SAVEPOINT "s1_x"', False),
        ('RELEASE SAVEPOINT "s1_x"', False),
        ("SET TIME ZONE 'UTC'", False),
        ('INSERT INTO "saas_user" VALUES (1)', True),
        ('update "saas_user" set name = 1', True),
        ('DELETE FROM "saas_user"', True),
        ("WITH moved AS (UPDATE t SET x = 1 RETURNING *) SELECT * FROM moved", True),
        ("TRUNCATE t", True),
        ("", True),
    ],
)
def test_statements_are_classified_conservatively(sql, write):
    assert is_write(sql) is write


def wrote(state: RoutingState) -> bool:
    return state.wrote


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_building_unsaved_instances_is_not_a_write_but_raw_sql_is(routing):
    with unit_of_work("task") as state:
        user = User.objects.create(email=f"wr-{uuid.uuid4().hex[:8]}@example.test", home_region="eu-west-1")
    with unit_of_work("request") as state:
        Membership(user=user)  # Django asks db_for_write here; nothing is written
        assert not wrote(state)
        assert router.db_for_read(User) != "default"
        with connection.cursor() as cursor:
            cursor.execute("UPDATE saas_user SET name = %s WHERE id = %s", ["raw", user.pk])
        assert wrote(state)
        assert router.db_for_read(User) == "default"
