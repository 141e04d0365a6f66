"""A primary that cannot be reached: 503 primary_unavailable with Retry-After, never a 500.

The test process's ``default`` alias is pointed at a closed port (the harness
primary keeps running for everyone else): connecting is refused at once, as
when the primary is stopped. Reads the replicas can serve go on.
"""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from collections.abc import Iterator

import pytest
from django.db import DatabaseError, IntegrityError, OperationalError, connections, transaction
from django.test import RequestFactory
from rest_framework.test import APIClient

from regions.devstack.processes import free_port
from regions.problems import handler500
from regions.routing import best_effort_write, unit_of_work
from regions.routing.failures import database_unreachable
from regions.routing.state import current_state
from saas.models import ApiToken, Document, Membership
from tests.saas.factories import OrganizationFactory, ProjectFactory, UserFactory, token_for

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@contextlib.contextmanager
def primary_unreachable() -> Iterator[None]:
    """In this thread, connections to the primary are refused until the block ends."""
    primary = connections["default"]
    primary.close()
    port = primary.settings_dict["PORT"]
    primary.settings_dict["PORT"] = str(free_port())
    try:
        yield
    finally:
        primary.close()
        primary.settings_dict["PORT"] = port


def refused() -> DatabaseError:
    with primary_unreachable(), pytest.raises(DatabaseError) as raised:
        connections["default"].ensure_connection()
    return raised.value


def test_a_refused_connection_is_unreachable_and_a_failed_statement_is_not():
    assert database_unreachable(refused())

    with pytest.raises(OperationalError) as timed_out, transaction.atomic():
        with connections["default"].cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 1")
            cursor.execute("SELECT pg_sleep(1)")
    assert getattr(timed_out.value.__cause__, "sqlstate", None) == "57014"
    assert not database_unreachable(timed_out.value)

    with pytest.raises(IntegrityError) as duplicate, transaction.atomic():
        with connections["default"].cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE t (id int PRIMARY KEY)")
            cursor.execute("INSERT INTO t VALUES (1), (1)")
    assert not database_unreachable(duplicate.value)
    assert not database_unreachable(ValueError("no database here"))


def test_handler500_answers_503_primary_unavailable_for_an_unreachable_database():
    error = refused()
    try:
        raise error
    except DatabaseError:
        assert sys.exc_info()[1] is error
        response = handler500(RequestFactory().get("/api/v1/me"))
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert response["Content-Type"] == "application/problem+json"
    assert json.loads(response.content)["code"] == "primary_unavailable"


def test_a_skipped_bookkeeping_write_leaves_the_unit_reading_from_replicas():
    with unit_of_work("request") as state, primary_unreachable():
        with best_effort_write("a test's bookkeeping"):
            ApiToken.objects.filter(pk=uuid.uuid4()).update(name="x")
        assert state is current_state()
        assert not state.wrote and state.write_seq == 0


def test_a_bookkeeping_write_still_fails_inside_a_transaction_or_on_a_statement_error():
    with pytest.raises(IntegrityError), best_effort_write("a test's bookkeeping"), transaction.atomic():
        with connections["default"].cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE t (id int PRIMARY KEY)")
            cursor.execute("INSERT INTO t VALUES (1), (1)")


def test_while_the_primary_is_unreachable_reads_are_served_and_writes_get_503_then_succeed_on_retry(
    harness, routing, rate_limits_reset
):
    with unit_of_work("task"):
        owner = UserFactory.create()
        org = OrganizationFactory.create(owner=owner)
        project = ProjectFactory.create(organization=org)
        raw = token_for(Membership.objects.get(organization=org, user=owner))
    eu = harness.region("eu-west-1")
    lsn = eu.primary.current_lsn()
    for replica in eu.replicas:
        replica.wait_for_replay(lsn)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    documents = f"/api/v1/orgs/{org.slug}/documents"
    body = {"project": str(project.pk), "title": "kept"}
    key = {"Idempotency-Key": f'"{uuid.uuid4()}"'}

    with primary_unreachable():
        # The token was never used: its last_used_at refresh is skipped, not fatal.
        read = client.get(documents)
        write = client.post(documents, body, format="json", headers=key)

    assert read.status_code == 200, read.content
    assert write.status_code == 503, write.content
    assert write["Retry-After"] == "2"
    assert write["Content-Type"] == "application/problem+json"
    assert write.json()["code"] == "primary_unavailable"
    # The client retries with the same key once the primary is back: one document.
    retried = client.post(documents, body, format="json", headers=key)
    assert retried.status_code == 201, retried.content
    assert Document.objects.using("default").filter(organization=org, title="kept").count() == 1
