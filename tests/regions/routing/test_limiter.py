"""The cap on reads the primary serves in place of unavailable replicas."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.test import Client, override_settings

from regions.routing.health import registry
from regions.routing.limiter import admit_degraded, release
from regions.routing.state import RoutingState
from saas.models import User

pytestmark = [
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.urls("tests.regions.routing.app"),
]


@override_settings(ROUTING_DEGRADED_MAX_CONCURRENCY=1, ROUTING_DEGRADED_WAIT_SECONDS=0.01)
def test_at_the_cap_a_request_gets_503_and_a_slot_frees_at_the_end_of_a_request(routing):
    user = User.objects.create(email=f"cap-{uuid.uuid4().hex[:8]}@example.test", home_region="eu-west-1")
    registry.mark_down("replica_1", "test")
    registry.mark_down("replica_2", "test")

    holder = RoutingState(kind="request")
    admit_degraded(holder, alias="replicas")  # another request holds the only slot
    try:
        # The first degraded read may come from middleware (the residency directory
        # lookup) or from the view: either way the answer is a 503 problem.
        response = Client(raise_request_exception=False).get(f"/t/users/{user.pk}/name")
        assert response.status_code == 503
        assert response["Content-Type"] == "application/problem+json"
        assert response["Retry-After"] == "1"
        assert response.json()["code"] == "read_capacity_exhausted"
        assert response["X-Served-By-Region"] == "eu-west-1"
    finally:
        release(holder)

    # The slot is free again: the primary serves, and each request gives its slot back.
    for _ in range(3):
        response = Client().get(f"/t/users/{user.pk}/name")
        assert response.status_code == 200
        assert response.json()["alias"] == "default"
        assert response.json()["reasons"] == {"primary:replicas_down": 1}


@override_settings(ROUTING_DEGRADED_MAX_CONCURRENCY=2, ROUTING_DEGRADED_WAIT_SECONDS=0.01)
def test_causal_reads_tasks_and_repeat_reads_take_no_extra_slot(routing):
    states = [RoutingState(kind="request") for _ in range(2)]
    admit_degraded(states[0], alias="replicas")
    admit_degraded(states[0], alias="replicas")  # a unit holds one slot at most
    admit_degraded(states[1], alias="replicas")
    try:
        admit_degraded(RoutingState(kind="task"), alias="replicas")  # tasks are not capped
        with pytest.raises(Exception) as raised:
            admit_degraded(RoutingState(kind="request"), alias="replicas")
        assert getattr(raised.value, "code", None) == "read_capacity_exhausted"
    finally:
        for state in states:
            release(state)
    admit_degraded(third := RoutingState(kind="request"), alias="replicas")
    release(third)


@override_settings(ROUTING_DEGRADED_MAX_CONCURRENCY=1, ROUTING_DEGRADED_WAIT_SECONDS=5)
def test_a_request_waits_for_a_slot_within_the_bound(routing):
    holder = RoutingState(kind="request")
    admit_degraded(holder, alias="replicas")
    waiter = RoutingState(kind="request")
    admitted = threading.Event()

    def wait_for_slot() -> None:
        admit_degraded(waiter, alias="replicas")
        admitted.set()

    thread = threading.Thread(target=wait_for_slot)
    thread.start()
    release(holder)
    thread.join(10)
    assert admitted.is_set()
    release(waiter)
