"""A bounded client workload for the chaos scenarios, and the checker of what it saw acknowledged.

The workload behaves like a well-written API client on loopback: a few
threads, each with its own HTTP connection, mixing

- **reads**: the tenant's documents, its organization, ``/me``;
- **writes**: document creates with an ``Idempotency-Key``, retried with the
  *same* key on 5xx, 409 (in flight), 429 and connection errors, honouring
  ``Retry-After`` (capped), until acknowledged or the write deadline;
- **directory changes**: organization creates (also keyed), whose directory
  entries replicate to the peer region through the outbox.

It is bounded in time (``duration``) and in count (``max_requests``), and
paced. Every attempt is recorded (status, problem code, ``Retry-After``,
timings); every acknowledged write (2xx) is kept with its key and id.

``check()`` then verifies, on the home region's primary (not through the API
that was just broken), that each acknowledged write is present exactly once,
and that no key produced more than one row (acknowledged or not); and, when
asked, that every acknowledged organization reached the peer's directory.

Typical use::

    load = Workload(tenant=tenant, duration=20)
    with load.running():
        time.sleep(3)
        ...inject the fault, wait, recover...
        fault_end = time.monotonic()
    verdict = check(chaos, load, peer=PEER)
    figures = load.figures(..., verdict=verdict, recovery_s=load.recovery_after(fault_end))
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from regions.devstack.processes import wait_until
from tests.chaos.figures import Figures
from tests.chaos.stack import HOME, PEER, ChaosStack

TITLE_PREFIX = "chaos-doc-"
"""Document titles are ``chaos-doc-<idempotency key>``: a key's rows are found by title."""
ORG_PREFIX = "chaos-org-"

READ, WRITE, DIRECTORY = "read", "write", "directory"
RETRIED_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
"""What a careful client retries with the same Idempotency-Key (409: the key is still in flight)."""


# --- The tenant the workload acts for --------------------------------------------------------


@dataclass(frozen=True)
class Tenant:
    region: str
    base_url: str
    slug: str
    token: str
    token_id: str
    project_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def tenant_create(chaos: ChaosStack, *, region: str = HOME, tier: str | None = None) -> Tenant:
    """Sign up a fresh user and organization in ``region``, issue a token, create a project.

    ``tier`` sets the token's rate-limit tier on the primary, as an operator
    does in the admin (new tokens are ``standard``).
    """
    suffix = uuid.uuid4().hex[:10]
    email, password, slug = (
        f"chaos-{suffix}@chaos.example",
        f"chaos-pass-{uuid.uuid4().hex}",
        f"chaos-{suffix}",
    )
    zone = chaos.description["regions"][region]["zone"]
    base = chaos.base_url(region)
    with httpx.Client(base_url=base, timeout=30) as http:
        signed_up = http.post(
            "/api/v1/signup",
            json={"email": email, "password": password, "zone": zone, "organization_slug": slug},
        )
        assert signed_up.status_code == 201, signed_up.text
        issued = http.post(
            "/api/v1/auth/token", json={"email": email, "password": password, "organization": slug}
        )
        assert issued.status_code == 201, issued.text
        token = issued.json()
        auth = {"Authorization": f"Bearer {token['token']}"}
        project = http.post(f"/api/v1/orgs/{slug}/projects", json={"name": "Chaos"}, headers=auth)
        assert project.status_code == 201, project.text
    if tier is not None:
        chaos.query(region, "UPDATE saas_apitoken SET tier = %s WHERE id = %s", (tier, token["id"]))
    return Tenant(
        region=region,
        base_url=base,
        slug=slug,
        token=token["token"],
        token_id=str(token["id"]),
        project_id=str(project.json()["id"]),
    )


# --- What the workload saw --------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One HTTP request the workload made (a retried write makes several)."""

    op: str
    """``read``, ``write`` or ``directory``."""
    method: str
    path: str
    started: float
    ended: float
    """``time.monotonic()`` at the start and end."""
    status: int | None
    """The HTTP status, ``None`` when no answer came (connection refused, timeout)."""
    error: str = ""
    """The transport error's class name when ``status`` is ``None``."""
    code: str = ""
    """The problem code of an error answer (``application/problem+json``)."""
    retry_after: str | None = None
    key: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Ack:
    """A write the client saw acknowledged (2xx): it must be there exactly once."""

    kind: str
    """``document`` or ``organization``."""
    key: str
    ident: str
    """The document id, or the organization slug."""
    attempts: int
    acked_at: float


Policy = Callable[[Attempt], bool]


def no_errors(attempt: Attempt) -> bool:
    """The strictest policy: every request answered, and never a 5xx."""
    return attempt.status is not None and attempt.status < 500


def retry_later_only(attempt: Attempt) -> bool:
    """Every request answered; the only 5xx allowed is ``503`` with ``Retry-After`` (come back later)."""
    if attempt.status is None:
        return False
    if attempt.status == 503:
        return bool(attempt.retry_after)
    return attempt.status < 500


@dataclass
class Workload:
    tenant: Tenant
    threads: int = 3
    """Threads running the whole mix (a write retrying its key holds its thread, as in a real client)."""
    readers: int = 1
    """Extra threads that only read, so reads go on while every writer waits on a retry."""
    duration: float = 20.0
    """Seconds the threads keep starting operations (``running()`` may stop them earlier)."""
    max_requests: int = 2000
    """No operation starts after this many attempts."""
    pace: float = 0.03
    """Seconds each thread sleeps between operations: bounded load on a 2-core machine."""
    mix: tuple[tuple[str, int], ...] = ((READ, 6), (WRITE, 3), (DIRECTORY, 1))
    write_deadline: float = 45.0
    """Seconds a write keeps retrying its key before the client gives up (then not acknowledged)."""
    retry_after_cap: float = 1.0
    request_timeout: float = 10.0
    seed: int = 12
    attempts: list[Attempt] = field(default_factory=list, init=False)
    acks: list[Ack] = field(default_factory=list, init=False)
    keys: list[str] = field(default_factory=list, init=False)
    """Every document key tried, acknowledged or not."""
    gave_up: int = field(default=0, init=False)
    """Writes that were never acknowledged within their deadline."""
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _began: float = field(default=0.0, init=False, repr=False)

    # --- running ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def running(self) -> Iterator[Workload]:
        """Run the threads while the block runs; on exit stop starting operations and let
        writes in flight finish (acknowledged or given up) before returning."""
        self._stop.clear()
        self._began = time.monotonic()
        workers = [
            threading.Thread(
                target=self._loop,
                args=(index, index >= self.threads),
                name=f"chaos-load-{index}",
                daemon=True,
            )
            for index in range(self.threads + self.readers)
        ]
        for worker in workers:
            worker.start()
        try:
            yield self
        finally:
            self._stop.set()
            for worker in workers:
                worker.join(self.write_deadline + self.request_timeout + 5)
            alive = [w.name for w in workers if w.is_alive()]
            assert not alive, f"workload threads did not finish: {alive}"

    def run(self) -> Workload:
        """Run for ``duration`` seconds with no fault (a baseline)."""
        with self.running():
            self.wait_until_done()
        return self

    def wait_until_done(self) -> None:
        deadline = self._began + self.duration
        while time.monotonic() < deadline and len(self.attempts) < self.max_requests:
            time.sleep(0.05)

    def _should_start(self) -> bool:
        return (
            not self._stop.is_set()
            and time.monotonic() - self._began < self.duration
            and len(self.attempts) < self.max_requests
        )

    def _loop(self, index: int, reader: bool) -> None:
        rng = random.Random(self.seed * 1000 + index)
        ops = [READ] if reader else [op for op, weight in self.mix for _ in range(weight)]
        with httpx.Client(base_url=self.tenant.base_url, timeout=self.request_timeout) as http:
            causal: dict[str, str] = {}
            while self._should_start():
                op = rng.choice(ops)
                if op == READ:
                    self._read(http, rng, causal)
                elif op == WRITE:
                    self._write(http, causal)
                else:
                    self._directory(http, causal)
                time.sleep(self.pace)

    # --- operations -------------------------------------------------------------------------------

    def _request(
        self,
        http: httpx.Client,
        op: str,
        method: str,
        path: str,
        *,
        causal: dict[str, str],
        key: str | None = None,
        **kwargs: Any,
    ) -> tuple[Attempt, httpx.Response | None]:
        headers = {**self.tenant.auth, **causal}
        if key is not None:
            headers["Idempotency-Key"] = f'"{key}"'
        started = time.monotonic()
        try:
            response = http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            attempt = Attempt(op, method, path, started, time.monotonic(), None, type(exc).__name__, key=key)
            self._record(attempt)
            return attempt, None
        code = ""
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            with contextlib.suppress(ValueError):
                code = str(response.json().get("code", ""))
        token = response.headers.get("X-Causal-Token")
        if token:
            causal["X-Causal-Token"] = token
        attempt = Attempt(
            op,
            method,
            path,
            started,
            time.monotonic(),
            response.status_code,
            code=code,
            retry_after=response.headers.get("Retry-After"),
            key=key,
        )
        self._record(attempt)
        return attempt, response

    def _record(self, attempt: Attempt) -> None:
        with self._lock:
            self.attempts.append(attempt)

    def _read(self, http: httpx.Client, rng: random.Random, causal: dict[str, str]) -> None:
        slug = self.tenant.slug
        path = rng.choice(
            (
                f"/api/v1/orgs/{slug}/documents?project={self.tenant.project_id}&limit=20",
                f"/api/v1/orgs/{slug}",
                "/api/v1/me",
            )
        )
        self._request(http, READ, "GET", path, causal=causal)

    def _keyed(
        self, http: httpx.Client, op: str, path: str, body: dict[str, Any], key: str, causal: dict[str, str]
    ) -> httpx.Response | None:
        """POST with one key until acknowledged, a final answer, or the write deadline."""
        deadline = time.monotonic() + self.write_deadline
        while True:
            attempt, response = self._request(http, op, "POST", path, causal=causal, key=key, json=body)
            if response is not None and attempt.ok:
                return response
            retried = attempt.status is None or attempt.status in RETRIED_STATUSES
            if not retried or time.monotonic() >= deadline:
                with self._lock:
                    self.gave_up += 1
                return None
            time.sleep(self._backoff(attempt))

    def _backoff(self, attempt: Attempt) -> float:
        try:
            wanted = float(attempt.retry_after) if attempt.retry_after else 0.2
        except ValueError:
            wanted = 0.2
        return max(0.05, min(wanted, self.retry_after_cap))

    def _write(self, http: httpx.Client, causal: dict[str, str]) -> None:
        key = str(uuid.uuid4())
        with self._lock:
            self.keys.append(key)
        body = {"project": self.tenant.project_id, "title": f"{TITLE_PREFIX}{key}", "body": "chaos"}
        response = self._keyed(http, WRITE, f"/api/v1/orgs/{self.tenant.slug}/documents", body, key, causal)
        if response is not None:
            self._ack("document", key, str(response.json()["id"]))

    def _directory(self, http: httpx.Client, causal: dict[str, str]) -> None:
        key = str(uuid.uuid4())
        slug = f"{ORG_PREFIX}{key[:18]}"
        response = self._keyed(http, DIRECTORY, "/api/v1/orgs", {"name": "Chaos", "slug": slug}, key, causal)
        if response is not None:
            self._ack("organization", key, str(response.json()["slug"]))

    def _ack(self, kind: str, key: str, ident: str) -> None:
        with self._lock:
            attempts = sum(1 for a in self.attempts if a.key == key)
            self.acks.append(Ack(kind, key, ident, attempts, time.monotonic()))

    # --- figures ----------------------------------------------------------------------------------

    def statuses(self) -> Counter[str]:
        """Attempts per status (``"error"`` for no answer), e.g. ``{"200": 310, "503": 12}``."""
        return Counter("error" if a.status is None else str(a.status) for a in self.attempts)

    def failures(self, policy: Policy = no_errors) -> list[Attempt]:
        """Attempts the scenario's policy does not allow."""
        return [a for a in self.attempts if not policy(a)]

    def recovery_after(self, fault_end: float, *, op: str = WRITE) -> float | None:
        """Seconds from ``fault_end`` until the first successful ``op`` that started after it."""
        ended = [a.ended for a in self.attempts if a.op == op and a.ok and a.started >= fault_end]
        return min(ended) - fault_end if ended else None

    def between(self, start: float, end: float, *, op: str | None = None) -> list[Attempt]:
        """Attempts that started in ``[start, end)`` (of one ``op`` when given)."""
        return [a for a in self.attempts if start <= a.started < end and (op is None or a.op == op)]


@dataclass
class Verdict:
    acknowledged: int
    lost: list[Ack]
    duplicates: int
    """Rows beyond the first for one key (acknowledged or not)."""
    unreplicated: list[Ack]
    """Acknowledged organizations missing from the peer's directory after the wait."""


def check(
    chaos: ChaosStack, load: Workload, *, peer: str | None = PEER, replication_timeout: float = 60.0
) -> Verdict:
    """Every acknowledged write present exactly once on the home primary (and replicated)."""
    home = load.tenant.region
    acks = list(load.acks)
    titles = [f"{TITLE_PREFIX}{key}" for key in load.keys]
    rows = chaos.query(
        home,
        "SELECT title, array_agg(id::text) FROM saas_document WHERE title = ANY(%s) GROUP BY title",
        (titles,),
    )
    documents = {str(title): list(ids) for title, ids in rows}
    duplicates = sum(len(ids) - 1 for ids in documents.values())
    lost = [
        ack
        for ack in acks
        if ack.kind == "document" and ack.ident not in documents.get(f"{TITLE_PREFIX}{ack.key}", [])
    ]
    slugs = [ack.ident for ack in acks if ack.kind == "organization"]
    found = {
        str(slug)
        for (slug,) in chaos.query(home, "SELECT slug FROM saas_organization WHERE slug = ANY(%s)", (slugs,))
    }
    lost += [ack for ack in acks if ack.kind == "organization" and ack.ident not in found]
    unreplicated: list[Ack] = []
    if peer is not None and slugs:

        def missing() -> list[Ack]:
            there = {
                str(key)
                for (key,) in chaos.query(
                    peer,
                    "SELECT key FROM residency_directoryentry WHERE kind = 'org' AND key = ANY(%s)",
                    (slugs,),
                )
            }
            return [ack for ack in acks if ack.kind == "organization" and ack.ident not in there]

        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not missing(), timeout=replication_timeout, interval=0.25, what="replication")
        unreplicated = missing()
    return Verdict(acknowledged=len(acks), lost=lost, duplicates=duplicates, unreplicated=unreplicated)


def figures_of(
    load: Workload,
    verdict: Verdict,
    *,
    scenario: str,
    fault: str,
    command: str,
    policy: Policy = no_errors,
    recovery_s: float | None,
    extra: dict[str, object] | None = None,
) -> Figures:
    """The scenario's line: requests, failures under its policy, lost writes, duplicates, recovery."""
    return Figures(
        scenario=scenario,
        fault=fault,
        command=command,
        requests=len(load.attempts),
        failures=len(load.failures(policy)),
        lost_writes=len(verdict.lost) + len(verdict.unreplicated),
        duplicates=verdict.duplicates,
        recovery_s=None if recovery_s is None else round(recovery_s, 2),
        extra={"acknowledged": verdict.acknowledged, **(extra or {})},
    )
