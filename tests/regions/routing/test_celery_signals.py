"""Causal tokens in Celery task headers, with a real worker process over the real broker."""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client

from regions.devstack.processes import wait_until
from regions.routing import tokens, unit_of_work
from regions.routing.celery_signals import attach_causal_token, task_state
from regions.routing.lsn import LSN_MAX
from saas.models import User

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.mark.slow
@pytest.mark.urls("tests.regions.routing.app")
def test_a_task_enqueued_after_a_write_reads_it_while_replay_is_paused(celery_worker, pause_replay):
    celery_worker("eu-west-1", include="tests.regions.routing.app")
    pause_replay()
    email = f"task-{uuid.uuid4().hex[:8]}@example.test"
    after_write, control = f"after-write-{email}", f"control-{email}"

    client = Client()
    assert client.post("/t/signup", {"email": email, "key": after_write}).status_code == 200
    # Same read, enqueued by a request that wrote nothing: no token, a replica, which lags.
    assert Client().post("/t/enqueue", {"email": email, "key": control}).status_code == 200

    wait_until(
        lambda: cache.get(after_write) is not None and cache.get(control) is not None,
        timeout=60,
        what="both tasks to report",
    )
    assert cache.get(after_write) == {"exists": True, "alias": "default", "kind": "task"}
    seen = cache.get(control)
    assert seen["exists"] is False and seen["alias"] in ("replica_1", "replica_2")


def test_the_publish_handler_attaches_a_token_after_commit_and_a_pin_inside_a_transaction(routing):
    with unit_of_work("request"):
        headers: dict[str, str] = {}
        attach_causal_token(headers=headers)
        assert headers == {}  # nothing written, no token held: nothing to say

        User.objects.create(email=f"pub-{uuid.uuid4().hex[:8]}@example.test", home_region="eu-west-1")
        attach_causal_token(headers=headers)
        verdict = tokens.verify(headers[tokens.TASK_HEADER])
        assert verdict is not None and verdict.outcome == "valid" and 0 < verdict.lsn < LSN_MAX

        with transaction.atomic():
            headers = {}
            attach_causal_token(headers=headers)
            assert headers == {tokens.TASK_PRIMARY_HEADER: "1"}


class FakeRequest(dict[str, str]):
    """``task.request.get`` is all the handler uses."""


@pytest.mark.parametrize("raw", ["garbage", "x" * 400, tokens.issue(5)[:-3] + "abc"])
def test_a_garbled_task_header_sends_the_task_to_the_primary(raw, routing):
    state = task_state(FakeRequest({tokens.TASK_HEADER: raw}))
    assert state.forced_reason == "token_invalid"
    with unit_of_work("task", state):
        assert User.objects.filter(pk=uuid.uuid4()).db == "default"


def test_a_valid_task_header_sets_the_floor_and_the_primary_header_pins(routing):
    assert task_state(FakeRequest({tokens.TASK_HEADER: tokens.issue(1234)})).floor_lsn == 1234
    assert task_state(FakeRequest({tokens.TASK_PRIMARY_HEADER: "1"})).forced_reason == "task_primary"
    assert task_state(FakeRequest()).floor_lsn == 0
