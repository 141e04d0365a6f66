"""Idempotency-Key on POST and PATCH, on the real region primary.

Every case of the policy (saas/idempotency.py): replay, 422 on another body,
409 while in flight, 400 on a malformed key, crash lease takeover, scope per
client, responses that are not stored, retention and the purge task, and two
concurrent requests with one key making exactly one effect.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from regions.devstack.processes import wait_until
from saas import idempotency
from saas.models import Document, IdempotencyRecord, Project
from saas.tasks import purge_idempotency_records
from tests.saas.conftest import build_org


def key() -> str:
    return f'"{uuid.uuid4()}"'


def create_doc(client: APIClient, org, idem: str | None, title: str = "Minutes", **extra):
    headers: dict[str, Any] = {"HTTP_IDEMPOTENCY_KEY": idem} if idem is not None else {}
    return client.post(
        f"/api/v1/orgs/{org.slug}/documents",
        {"project": str(org.project.pk), "title": title, "body": "text"},
        format="json",
        **headers,
        **extra,
    )


def test_a_retry_replays_the_first_response_and_makes_no_second_effect(acme):
    client, idem = acme.client("member"), key()
    first = create_doc(client, acme, idem)
    assert first.status_code == 201
    assert not first.has_header("Idempotent-Replayed")
    again = create_doc(client, acme, idem)
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert again["Location"] == first["Location"]
    assert again["Content-Type"] == first["Content-Type"]
    assert Document.objects.filter(title="Minutes").count() == 1


def test_the_fingerprint_ignores_json_key_order_and_spacing(acme):
    client, idem, path = acme.client("member"), key(), f"/api/v1/orgs/{acme.slug}/projects"
    admin = acme.client("admin")
    first = admin.post(
        path, data=b'{"name": "Apollo"}', content_type="application/json", HTTP_IDEMPOTENCY_KEY=idem
    )
    again = admin.post(
        path, data=b'{ "name":"Apollo" }', content_type="application/json", HTTP_IDEMPOTENCY_KEY=idem
    )
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert Project.objects.filter(name="Apollo").count() == 1
    assert client  # the member is not involved


def test_the_same_key_with_another_body_is_422(acme):
    client, idem = acme.client("member"), key()
    assert create_doc(client, acme, idem, title="One").status_code == 201
    response = create_doc(client, acme, idem, title="Two")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert not Document.objects.filter(title="Two").exists()


@pytest.mark.parametrize(
    "value",
    ["abc", '"', '""', "'abc'", '"abc" junk', '"tab\there"', '"' + "x" * 256 + '"', '"é"', "1"],
)
def test_a_malformed_key_is_400_and_makes_no_effect(acme, value):
    response = create_doc(acme.client("member"), acme, value, title="Malformed")
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"
    assert not Document.objects.filter(title="Malformed").exists()


def test_structured_field_escapes_and_parameters_are_understood():
    assert idempotency.parse_key('"a\\"b\\\\c"') == 'a"b\\c'
    assert idempotency.parse_key(' "k-1";v=1') == "k-1"


def test_the_key_is_scoped_to_the_client_and_the_route(acme):
    idem = key()
    assert create_doc(acme.client("member"), acme, idem).status_code == 201
    other_client = create_doc(acme.client("admin"), acme, idem)
    assert other_client.status_code == 201 and not other_client.has_header("Idempotent-Replayed")
    other_route = acme.client("member").post(
        f"/api/v1/orgs/{acme.slug}/projects", {"name": "x"}, format="json", HTTP_IDEMPOTENCY_KEY=idem
    )
    assert other_route.status_code == 403  # a new request on another route, judged on its own
    assert Document.objects.filter(title="Minutes").count() == 2


def test_patch_is_idempotent_too(acme):
    client, idem = acme.client("member"), key()
    path = f"/api/v1/orgs/{acme.slug}/documents/{acme.document.pk}"
    first = client.patch(path, {"title": "v2"}, format="json", HTTP_IDEMPOTENCY_KEY=idem)
    Document.objects.filter(pk=acme.document.pk).update(title="changed meanwhile")
    again = client.patch(path, {"title": "v2"}, format="json", HTTP_IDEMPOTENCY_KEY=idem)
    assert again["Idempotent-Replayed"] == "true" and again.content == first.content
    assert Document.objects.get(pk=acme.document.pk).title == "changed meanwhile"  # not applied twice


def test_validation_errors_are_not_stored_so_the_client_can_fix_and_retry(acme):
    client, idem = acme.client("member"), key()
    bad = client.post(
        f"/api/v1/orgs/{acme.slug}/documents",
        {"project": str(acme.project.pk)},
        format="json",
        HTTP_IDEMPOTENCY_KEY=idem,
    )
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    assert create_doc(client, acme, idem).status_code == 201


def test_errors_of_an_executed_request_are_stored_and_replayed(acme):
    client, idem = acme.client("owner"), key()
    owner = acme.members["owner"]
    path = f"/api/v1/orgs/{acme.slug}/members/{owner.pk}"
    first = client.delete(path)  # DELETE is not idempotency-keyed: naturally idempotent
    assert first.status_code == 409
    demote = client.patch(path, {"role": "member"}, format="json", HTTP_IDEMPOTENCY_KEY=idem)
    assert demote.status_code == 409 and demote.json()["code"] == "last_owner"
    again = client.patch(path, {"role": "member"}, format="json", HTTP_IDEMPOTENCY_KEY=idem)
    assert again.status_code == 409 and again["Idempotent-Replayed"] == "true"


def test_a_claim_in_flight_answers_409_then_expires_after_its_lease(acme, harness):
    client, idem = acme.client("member"), key()
    body = b'{"project": "%s", "title": "Minutes", "body": "text"}' % str(acme.project.pk).encode()
    claim = idempotency.idempotency_begin(
        client=f"token:{acme_token_id(acme, 'member')}",
        method="POST",
        route=f"/api/v1/orgs/{acme.slug}/documents",
        key=idem.strip('"'),
        fingerprint=idempotency.fingerprint(body),
    )
    assert isinstance(claim, idempotency.Claim)  # a request that then crashed: never completed
    in_flight = create_doc(client, acme, idem)
    assert in_flight.status_code == 409
    assert in_flight.json()["code"] == "idempotency_request_in_flight"
    assert int(in_flight["Retry-After"]) >= 1
    assert not Document.objects.filter(title="Minutes").exists()
    # The lease runs out (Redis expires the claim): the retry takes over.
    redis = harness.region("eu-west-1").redis.client(0)
    claim_key = f"idem:{claim.scope}"
    assert 0 < redis.pttl(claim_key) <= 60_000
    redis.pexpire(claim_key, 1)
    wait_until(lambda: not redis.exists(claim_key), timeout=10, what="the lease to expire")
    taken_over = create_doc(client, acme, idem)
    assert taken_over.status_code == 201
    assert Document.objects.filter(title="Minutes").count() == 1
    # A late completion of the crashed request finds the record: it must roll back and replay.
    earlier = idempotency.idempotency_complete(claim=claim, response=taken_over)
    assert earlier is not None and earlier.status == 201 and earlier.body == taken_over.content.decode()


def test_without_redis_the_unique_record_still_applies_the_effect_once(acme, harness, caplog):
    from saas.models import ApiToken

    ApiToken.objects.filter(organization=acme.org).update(tier="critical")  # served while Redis is down
    client, idem = acme.client("member"), key()
    redis = harness.region("eu-west-1").redis
    redis.stop()
    try:
        first = create_doc(client, acme, idem)
        again = create_doc(client, acme, idem)
        other = create_doc(client, acme, idem, title="Other")
    finally:
        redis.restart()
    assert first.status_code == 201 and not first.has_header("Idempotent-Replayed")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert other.status_code == 422
    assert Document.objects.filter(title="Minutes").count() == 1
    assert any("idempotency: Redis unavailable" in r.getMessage() for r in caplog.records)


def acme_token_id(org, role: str) -> uuid.UUID:
    from saas.models import ApiToken

    return ApiToken.objects.get(organization=org.org, user=org.members[role].user).pk


def test_records_live_in_the_primary_and_are_purged_after_the_retention(acme, settings):
    create_doc(acme.client("member"), acme, key())
    record = IdempotencyRecord.objects.get()
    assert record.response_status == 201 and '"title":"Minutes"' in record.response_body
    assert record.home_region == settings.REGION
    assert "127.0.0.1" not in record.client
    assert purge_idempotency_records() == 0  # younger than 24 h: kept
    IdempotencyRecord.objects.update(
        created_at=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_RETENTION_HOURS, minutes=1)
    )
    assert purge_idempotency_records() == 1
    assert not IdempotencyRecord.objects.exists()


def test_the_purge_task_is_scheduled_periodically(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["saas.idempotency_records_purge"]
    assert entry["task"] == purge_idempotency_records.name
    assert entry["schedule"] <= 24 * 3600


# --- Concurrency: committed data, real connections -----------------------------------------


@pytest.fixture
def committed_org(transactional_db, rate_limits_reset):
    return build_org()


def _close_connections() -> None:
    for conn in connections.all():
        conn.close()


def _primary_dsn() -> str:
    params = connection.get_connection_params()
    return psycopg.conninfo.make_conninfo(
        **{k: v for k, v in params.items() if k in {"host", "port", "user", "dbname", "password"}}
    )


@pytest.mark.django_db(transaction=True)
def test_a_second_request_while_the_first_is_in_its_effect_gets_409_and_one_effect_happens(committed_org):
    org, idem = committed_org, key()
    results: dict[str, object] = {}

    def first() -> None:
        try:
            results["first"] = create_doc(org.client("member"), org, idem)
        finally:
            _close_connections()

    # Hold the first request inside its effect: its INSERT waits on our table lock.
    with (
        psycopg.connect(_primary_dsn(), autocommit=False) as blocker,
        psycopg.connect(_primary_dsn(), autocommit=True) as watcher,
    ):
        blocker.execute("LOCK TABLE saas_document IN EXCLUSIVE MODE")
        thread = threading.Thread(target=first)
        thread.start()
        try:
            wait_until(
                lambda: (
                    watcher.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE 'INSERT INTO \"saas_document\"%'"
                    ).fetchone()
                    == (1,)
                ),
                timeout=30,
                what="the first request to block inside its effect",
            )
            second = create_doc(org.client("member"), org, idem)
            assert second.status_code == 409
            assert second.json()["code"] == "idempotency_request_in_flight"
            assert second["Retry-After"] == "1"
        finally:
            blocker.rollback()  # releases the lock
            thread.join(timeout=60)
    assert results["first"].status_code == 201  # type: ignore[attr-defined]
    third = create_doc(org.client("member"), org, idem)
    assert third.status_code == 201 and third["Idempotent-Replayed"] == "true"
    assert Document.objects.filter(title="Minutes").count() == 1


@pytest.mark.django_db(transaction=True)
def test_racing_requests_with_one_key_make_exactly_one_effect(committed_org):
    org, idem = committed_org, key()
    barrier = threading.Barrier(6)

    def attempt(_: int) -> tuple[int, str | None]:
        try:
            client = org.client("member")
            barrier.wait(timeout=30)
            response = create_doc(client, org, idem, title="Race")
            return response.status_code, response.get("Idempotent-Replayed")
        finally:
            _close_connections()

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(attempt, range(6)))
    assert Document.objects.filter(title="Race").count() == 1
    originals = [o for o in outcomes if o == (201, None)]
    assert len(originals) == 1, outcomes
    assert all(o in {(201, None), (201, "true"), (409, None)} for o in outcomes), outcomes
