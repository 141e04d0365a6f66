"""Read-your-writes through the real middleware stack, with replica replay paused."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core import signing
from django.db import connections
from django.test import AsyncClient, Client, override_settings
from django.test.utils import CaptureQueriesContext
from prometheus_client import REGISTRY

from regions.routing import tokens, unit_of_work
from regions.routing.lsn import LSN_MAX, REPLAY_LSN_SQL
from saas.models import User
from tests.regions.routing import app
from tests.regions.routing.test_failures import primary_unreachable

pytestmark = [
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.urls("tests.regions.routing.app"),
]

REPLICA_ALIASES = ("replica_1", "replica_2")


# Setup writes run in their own unit, so the test thread itself has written nothing
# (requests made through the test client start from the test thread's causal floor).


def make_user(name: str = "before") -> User:
    with unit_of_work("task"):
        return User.objects.create(
            email=f"rw-{uuid.uuid4().hex[:10]}@example.test", home_region="eu-west-1", name=name
        )


def logged_in(user: User) -> Client:
    client = Client()
    with unit_of_work("task"):
        client.force_login(user)
    return client


def rename(client: Client, name: str):
    response = client.post("/t/me/name", {"name": name})
    assert response.status_code == 200, response.content
    return response


def read_name(client: Client, user: User, **headers: str) -> dict[str, Any]:
    response = client.get(f"/t/users/{user.pk}/name", headers=headers)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def test_the_writer_reads_its_write_through_cookie_header_and_other_device(pause_replay):
    writer, other = make_user(), make_user()
    laptop, phone, stranger = logged_in(writer), logged_in(writer), logged_in(other)
    pause_replay()

    response = rename(laptop, "after")
    token = response.headers[tokens.HEADER]
    assert response.cookies[tokens.cookie_name()].value == token
    assert response.cookies[tokens.cookie_name()]["httponly"]

    # The cookie (browser): the writer's next GET sees the write, from the primary.
    seen = read_name(laptop, writer)
    assert (seen["name"], seen["alias"]) == ("after", "default")
    assert seen["reasons"] == {"primary:token_ahead": 1}

    # The header (API client without cookies).
    seen = read_name(Client(), writer, **{tokens.HEADER: token})
    assert (seen["name"], seen["alias"]) == ("after", "default")

    # Another device of the same user: no cookie, no header, the per-user token in Redis.
    seen = read_name(phone, writer)
    assert (seen["name"], seen["alias"]) == ("after", "default")

    # Everyone else keeps reading from a (stale) replica.
    for client in (stranger, Client()):
        seen = read_name(client, writer)
        assert seen["alias"] in REPLICA_ALIASES
        assert seen["name"] == "before"


def routing_sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"region": "eu-west-1", **labels}) or 0.0


def test_routing_decisions_and_token_outcomes_are_counted_in_the_metrics(pause_replay):
    writer = make_user()
    laptop = logged_in(writer)
    pause_replay()
    before = {
        "replica": routing_sample("saas_db_route_total", target="replica", reason="healthy"),
        "ahead": routing_sample("saas_db_route_total", target="primary", reason="token_ahead"),
        "token": routing_sample("saas_causal_token_total", outcome="ahead"),
    }
    read_name(Client(), writer)  # anonymous: a healthy replica
    token = rename(laptop, "counted").headers[tokens.HEADER]
    read_name(Client(), writer, **{tokens.HEADER: token})  # the token is ahead of the paused replicas
    assert routing_sample("saas_db_route_total", target="replica", reason="healthy") >= before["replica"] + 1
    ahead = routing_sample("saas_db_route_total", target="primary", reason="token_ahead")
    assert ahead == before["ahead"] + 1
    assert routing_sample("saas_causal_token_total", outcome="ahead") == before["token"] + 1


@pytest.fixture
def primary_session_closed_after() -> Iterator[None]:
    """The test client shares this thread's connections: drop the one a test view cut off."""
    yield
    connections["default"].close()


def test_a_write_cut_off_by_the_primary_going_away_pins_no_read_to_it(
    harness, routing, primary_session_closed_after
):
    """A 503 acknowledged no write: no ``LSN_MAX`` token for the client, none for the user.

    The failed UPDATE counts as the unit's write, and its commit LSN cannot be
    read. Before, the 503 carried an ``LSN_MAX`` token, and the per-user token
    pinned every device of the user to the unreachable primary for the token's
    lifetime: its replica reads turned into 503s.
    """
    user = make_user()
    client = logged_in(user)
    replicas_caught_up(harness)
    client.raise_request_exception = False  # the 503 is the answer under test
    response = client.post("/t/me/name/cut-off", {"name": "cut off"})
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "primary_unavailable"
    assert tokens.HEADER not in response
    assert tokens.cookie_name() not in response.cookies
    assert tokens.user_lsn_get(str(user.pk)) < LSN_MAX
    with primary_unreachable():
        assert read_name(client, user)["alias"] in REPLICA_ALIASES


def test_a_write_acknowledged_before_the_primary_went_away_pins_the_writer_to_it(
    harness, routing, primary_session_closed_after
):
    """The other side: a 2xx whose commit LSN cannot be read keeps read-your-writes with ``LSN_MAX``."""
    user = make_user()
    client = logged_in(user)
    replicas_caught_up(harness)
    response = client.post("/t/me/name/then-cut-off", {"name": "kept"})
    assert response.status_code == 200, response.content
    assert tokens.verify(response[tokens.HEADER]) == tokens.Verdict("valid", LSN_MAX)
    assert tokens.user_lsn_get(str(user.pk)) == LSN_MAX
    connections["default"].close()  # the primary is back: a new session
    assert read_name(client, user) == {
        "alias": "default",
        "reasons": {"primary:token_ahead": 1},
        "name": "kept",
    }


def test_reads_return_to_the_replica_once_it_replays_past_the_token(harness, pause_replay):
    writer = make_user()
    client = logged_in(writer)
    replicas = pause_replay()
    rename(client, "after")
    assert read_name(client, writer)["alias"] == "default"

    for replica in replicas:
        replica.resume_replay()
    lsn = harness.region("eu-west-1").primary.current_lsn()
    for replica in replicas:
        replica.wait_for_replay(lsn)

    seen = read_name(client, writer)
    assert (seen["name"], seen["alias"][:8]) == ("after", "replica_")
    assert seen["reasons"] == {"replica:caught_up": 1}


def test_a_request_without_token_costs_no_extra_query(harness, routing):
    user = make_user()
    replicas_caught_up(harness)
    with capture_all() as captured:
        seen = read_name(Client(), user)
    assert seen["alias"] in REPLICA_ALIASES
    assert [len(c.captured_queries) for c in captured] == [
        1 if alias == seen["alias"] else 0 for alias in ("default", *REPLICA_ALIASES)
    ]


def test_a_fresh_token_costs_one_cached_replay_lsn_query(pause_replay):
    writer = make_user()
    client = logged_in(writer)
    pause_replay()
    token = rename(client, "after").headers[tokens.HEADER]

    with override_settings(ROUTING_REPLAY_LSN_CACHE_SECONDS=60), capture_all() as captured:
        first = read_name(Client(), writer, **{tokens.HEADER: token})
        second = read_name(Client(), writer, **{tokens.HEADER: token})
    assert first["alias"] == second["alias"] == "default"
    by_alias = dict(zip(("default", *REPLICA_ALIASES), captured, strict=True))
    assert len(by_alias["default"].captured_queries) == 2  # the two views' reads
    lsn_checks = [
        q["sql"]
        for alias in REPLICA_ALIASES
        for q in by_alias[alias].captured_queries
        if q["sql"] == REPLAY_LSN_SQL
    ]
    assert len(lsn_checks) == 1  # the second request reused the cached replay LSN
    assert sum(len(by_alias[a].captured_queries) for a in REPLICA_ALIASES) == 1


GARBLED = [
    "garbage",
    "x" * 5000,
    "\u00fcnicode.token:abc:def",
    "eu-west-1.FFFFFFFF",  # the right shape, no signature
    ":::",
]


def forged_tokens() -> list[str]:
    genuine = tokens.issue(0x1234)
    value, timestamp, signature = genuine.rsplit(":", 2)
    other_key = signing.TimestampSigner(key="not-our-secret-key", salt="regions.routing.causal-token")
    ours = signing.TimestampSigner(salt="regions.routing.causal-token")
    return [
        *GARBLED,
        f"eu-west-1.FFFF:{timestamp}:{signature}",  # tampered LSN
        f"{value}:{timestamp}:{signature[:-2]}AA",  # tampered signature
        other_key.sign("eu-west-1.FFFF"),  # signed with another key
        ours.sign("eu-west-1.not-hex"),  # well signed, garbled inside
        ours.sign("no-dot-at-all"),
    ]


@pytest.mark.parametrize("source", ["cookie", "header"])
def test_forged_or_garbled_tokens_never_error_and_never_read_a_lagging_replica(source, pause_replay):
    user = make_user()
    pause_replay()
    with unit_of_work("task"):
        User.objects.filter(pk=user.pk).update(name="after")  # the replicas lag behind this
    for raw in forged_tokens():
        client = Client()
        headers = {}
        if source == "cookie":
            client.cookies[tokens.cookie_name()] = raw
        else:
            headers[tokens.HEADER] = raw
        seen = read_name(client, user, **headers)
        assert (seen["alias"], seen["name"]) == ("default", "after"), raw
        assert seen["reasons"] == {"primary:token_invalid": 1}


def test_test_client_requests_see_what_the_test_wrote(pause_replay):
    user = make_user()
    pause_replay()
    User.objects.filter(pk=user.pk).update(name="after")  # in the test thread itself
    seen = read_name(Client(), user)
    assert (seen["alias"], seen["name"]) == ("default", "after")


def test_a_garbled_cookie_is_cleared(routing):
    user = make_user()
    client = Client()
    client.cookies[tokens.cookie_name()] = "garbage"
    response = client.get(f"/t/users/{user.pk}/name")
    assert response.status_code == 200
    assert response.cookies[tokens.cookie_name()].value == ""
    assert response.cookies[tokens.cookie_name()]["max-age"] == 0


def test_expired_and_other_region_tokens_are_ignored(harness, monkeypatch, routing):
    user = make_user()
    replicas_caught_up(harness)
    with override_settings(REGION="us-east-1"):
        foreign = tokens.issue(1 << 60)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - 3600)  # signing reads time.time
    expired = tokens.issue(1 << 60)
    monkeypatch.undo()
    for raw in (foreign, expired):
        seen = read_name(Client(), user, **{tokens.HEADER: raw})
        assert seen["alias"] in REPLICA_ALIASES, raw
    assert tokens.verify(foreign) == tokens.Verdict("other_region")
    assert tokens.verify(expired) == tokens.Verdict("expired")


def test_every_response_names_the_region(routing, settings):
    user = make_user()
    client = Client()
    responses = [
        client.get(f"/t/users/{user.pk}/name"),  # 200
        client.get("/no/such/route"),  # 404 problem
        client.post(f"/t/users/{user.pk}/name"),  # 405
    ]
    settings.SECURE_SSL_REDIRECT = True
    # SecurityMiddleware's redirect (a new client loads the middleware with the new setting).
    responses.append(Client().get(f"/t/users/{user.pk}/name"))
    assert [r.status_code for r in responses] == [200, 404, 405, 301]
    assert {r.headers["X-Served-By-Region"] for r in responses} == {"eu-west-1"}


# --- Concurrency --------------------------------------------------------------------


def test_state_does_not_leak_between_threads_of_one_process(pause_replay):
    """Two WSGI requests in two threads (as gunicorn's gthread worker runs them), interleaved."""
    user = make_user()
    pause_replay()
    app.BARRIERS.update(written=threading.Barrier(2), read=threading.Barrier(2))
    results: dict[str, dict[str, Any]] = {}

    def run(role: str) -> None:
        try:
            response = Client().get(f"/t/threaded/{user.pk}", {"role": role, "name": "after"})
            results[role] = response.json()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(role,)) for role in ("writer", "reader")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # The reader read while the writer's request was in flight, after its write: replica, stale.
    assert results["reader"]["read_alias"] in REPLICA_ALIASES
    assert results["reader"]["name"] == "before"
    # The writer's own read in the same request: primary.
    assert (results["writer"]["read_alias"], results["writer"]["name"]) == ("default", "after")


# Async-capable middleware only: a sync-only one holds the one thread-sensitive
# thread while the interleaved view waits, so the two requests could not overlap.
ASYNC_STACK = [
    "regions.routing.middleware.ServedByRegionMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "regions.routing.middleware.RoutingMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


@override_settings(MIDDLEWARE=ASYNC_STACK)
def test_state_does_not_leak_between_asgi_requests_sharing_a_thread(pause_replay):
    user = make_user()
    pause_replay()

    async def both() -> list[dict[str, Any]]:
        app.EVENTS.update(written=asyncio.Event(), read=asyncio.Event())
        client = AsyncClient()
        responses = await asyncio.gather(
            client.get(f"/t/interleaved/{user.pk}", {"role": "writer", "name": "after"}),
            client.get(f"/t/interleaved/{user.pk}", {"role": "reader"}),
        )
        return [r.json() for r in responses]

    writer, reader = async_to_sync(both)()
    assert (reader["read_alias"][:8], reader["name"]) == ("replica_", "before")
    assert (writer["read_alias"], writer["name"]) == ("default", "after")


# --- helpers --------------------------------------------------------------------------


def replicas_caught_up(harness) -> None:
    """Wait until both replicas replayed everything committed so far; refresh the router's view."""
    from regions.routing.probe import probe_once

    stack = harness.region("eu-west-1")
    lsn = stack.primary.current_lsn()
    for replica in stack.replicas:
        replica.wait_for_replay(lsn)
    probe_once()


class capture_all:
    """CaptureQueriesContext on the primary and both replicas at once."""

    def __enter__(self) -> list[CaptureQueriesContext]:
        self.contexts = [CaptureQueriesContext(connections[a]) for a in ("default", *REPLICA_ALIASES)]
        for context in self.contexts:
            context.__enter__()
        return self.contexts

    def __exit__(self, *exc) -> None:
        for context in reversed(self.contexts):
            context.__exit__(*exc)
