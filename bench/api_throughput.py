"""API throughput: document read and create through the full stack vs the same view on bare DRF.

Starts its own PostgreSQL primary with one streaming replica and a Redis on
loopback (tests/harness), migrates, seeds one organization, token, project and
document through the services, then runs two gunicorn servers side by side:

- **full**: ``settings.production`` (DEBUG off), every middleware on (security,
  sessions, residency, rate limits with the Lua script on Redis, CSRF, auth,
  ...), our views (membership and role lookup, 413 guard) and, for create, an
  ``Idempotency-Key`` per request (claim + record in the same transaction);
- **bare**: the same settings with ``MIDDLEWARE = []`` and plain DRF generic
  views over the same model, serializer and token authentication
  (``bench/api_bare_settings.py``, ``bench/api_bare_urls.py``).

After a 2 s warm-up of each, wrk drives each (read, create) x (full, bare)
pair back to back in alternating order, ``rounds`` times, at saturation (8
connections); the ratio is the median of the per-pair ratios (a pair sees the
same background load), reported with median throughput and p50/p99. Then the
read at a fixed load (4 connections, each pausing 40 ms between requests) for
the latency a client sees below saturation (p99), and one client at a time.
Targets: read ratio >= 0.90, create ratio >= 0.75 (full / bare throughput).

Where the difference goes: during every saturated run the CPU time (utime +
stime from ``/proc``) of the server's gunicorn processes, of every ``postgres``
process and of every ``redis-server`` process is divided by the requests
served, and reported per request (informational rows).

    .venv/bin/python -m bench.api_throughput            # 9 paired rounds of 4 s (about 6 min)
    .venv/bin/python -m bench.api_throughput --quick    # 3 paired rounds of 3 s (about 2 min)

Needs ``wrk``: installed with ``apt-get install -y wrk`` when missing and
running as root on Debian; otherwise the benchmark says so and stops.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import Row, cli, ensure_wrk

NAME = "api_throughput"
REPO = Path(__file__).resolve().parents[1]
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
WRK_THREADS = 2
WARMUP_SECONDS = 2
FIXED_LOAD_CONNECTIONS = 4
FIXED_LOAD_DELAY_MS = 40
"""The fixed load: 4 connections, each pausing 40 ms after every answer (about 80 req/s at 10 ms)."""
GUNICORN_WORKERS = 2

_SCRIPT = """
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
  table.insert(threads, thread)
end
local function headers(extra)
  -- wrk.format uses the given table instead of wrk.headers: always pass every header.
  local all = {
    ["Authorization"] = "Bearer %(token)s",
    ["X-Forwarded-Proto"] = "https",
    ["Content-Type"] = "application/json",
  }
  for name, value in pairs(extra) do all[name] = value end
  return all
end
function request()
  if "%(method)s" == "GET" then
    return wrk.format("GET", "%(path)s", headers({}))
  end
  counter = counter + 1
  local key = string.format('"%(run)s-%%s-%%d"', tid, counter)
  return wrk.format("POST", "%(path)s", headers({["Idempotency-Key"] = key}), '%(body)s')
end
%(pacing)s
function done(summary, latency, requests)
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    'RESULT {"requests": %%d, "seconds": %%f, "errors": %%d, "p50_ms": %%f, "p99_ms": %%f}\\n',
    summary.requests, summary.duration / 1e6, bad,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


@dataclass
class Sample:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: dict[str, float] = field(default_factory=dict)
    """CPU milliseconds per request by process group (``CPU_GROUPS``), when measured."""


CPU_GROUPS = ("gunicorn", "postgres", "redis")
_TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, str, int]]:
    """Every process: pid -> (parent pid, command name, utime + stime in clock ticks)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2 :].split()
        table[int(entry)] = (int(rest[1]), name, int(rest[11]) + int(rest[12]))
    return table


def _cpu_by_group(table: dict[int, tuple[int, str, int]], server_pid: int) -> dict[str, int]:
    ticks = dict.fromkeys(CPU_GROUPS, 0)
    for pid, (parent, name, used) in table.items():
        if pid == server_pid or parent == server_pid:
            ticks["gunicorn"] += used
        elif name == "postgres":
            ticks["postgres"] += used
        elif name.startswith("redis-server"):
            ticks["redis"] += used
    return ticks


def cpu_per_request(
    before: dict[int, tuple[int, str, int]],
    after: dict[int, tuple[int, str, int]],
    *,
    server_pid: int,
    requests: int,
) -> dict[str, float]:
    """CPU milliseconds per request by group between two ``_processes()`` snapshots.

    A process present in both counts its difference; one started in between counts
    whole; one that ended in between is lost (gunicorn's sync workers and the
    persistent database connections live through a run).
    """
    kept = {pid: row for pid, row in before.items() if pid in after and after[pid][1] == row[1]}
    start, end = _cpu_by_group(kept, server_pid), _cpu_by_group(after, server_pid)
    return {group: (end[group] - start[group]) * 1000 / _TICK / max(requests, 1) for group in CPU_GROUPS}


def seed() -> dict[str, str]:
    """One organization with a critical-tier token, a project and a document (through the services)."""
    from saas import services
    from saas.models import ApiToken, Membership

    owner = services.user_create(email="bench@example.test", password="bench-password-0123456789")  # noqa: S106
    org = services.organization_create(name="Bench", slug="bench", owner=owner)
    actor = Membership.objects.select_related("organization", "user").get(organization=org, user=owner)
    project = services.project_create(actor=actor, name="bench")
    document = services.document_create(actor=actor, project=project, title="Bench", body="x" * 2000)
    token, new = services.api_token_create(actor=actor, name="bench")
    ApiToken.objects.filter(pk=token.pk).update(tier=ApiToken.Tier.CRITICAL)
    return {"token": new.raw, "slug": org.slug, "project": str(project.pk), "document": str(document.pk)}


def start_server(name: str, port: int, env: dict[str, str], root: Path):
    from regions.devstack.processes import ManagedProcess, wait_until

    server = ManagedProcess(
        name=name,
        argv=[
            sys.executable,
            "-m",
            "gunicorn",
            "saas.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            f"--workers={GUNICORN_WORKERS}",
            "--worker-class=sync",
            "--log-level=warning",
            "--timeout=60",
        ],
        log_path=root / f"{name}.log",
        env=env,
        cwd=REPO,
    )
    server.start()

    def live() -> bool:
        if not server.running():
            raise RuntimeError(f"{name} exited:\n{server.tail()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2) as response:
            return bool(response.status == 200)

    try:
        wait_until(live, timeout=60, interval=0.2, what=name)
    except TimeoutError:
        server.stop()
        raise RuntimeError(f"{name} did not come up:\n{server.tail()}") from None
    return server


def check(port: int, method: str, path: str, token: str, body: str | None) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body.encode() if body else None,
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "X-Forwarded-Proto": "https",
            "Content-Type": "application/json",
            "Idempotency-Key": f'"check-{uuid.uuid4()}"',
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http on loopback
        return int(response.status)


def one_client_ms(port: int, *, method: str, path: str, token: str, body: str, count: int) -> float:
    """Median latency of ``count`` requests sent one at a time (a new connection each, as wrk's
    connections to gunicorn's sync workers are): the cost per request without queueing."""
    timings = []
    for _ in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {
            "Authorization": f"Bearer {token}",
            "X-Forwarded-Proto": "https",
            "Content-Type": "application/json",
            "Idempotency-Key": f'"one-{uuid.uuid4()}"',
        }
        started = time.perf_counter()
        connection.request(method, path, body=body.encode() if body else None, headers=headers)
        response = connection.getresponse()
        response.read()
        timings.append(time.perf_counter() - started)
        connection.close()
        if response.status not in (200, 201):
            raise RuntimeError(f"{method} {path} answered {response.status}")
    return float(statistics.median(timings)) * 1000


def wrk_run(
    wrk: str,
    port: int,
    *,
    method: str,
    path: str,
    token: str,
    body: str,
    seconds: int,
    root: Path,
    connections: int = CONNECTIONS,
    delay_ms: int = 0,
    server_pid: int | None = None,
) -> Sample:
    """One wrk run. ``delay_ms``: each connection pauses that long between requests (a fixed load);
    ``server_pid``: the gunicorn master whose CPU per request is measured (``Sample.cpu_ms``)."""
    script = root / f"wrk-{uuid.uuid4().hex[:8]}.lua"
    pacing = f"function delay()\n  return {delay_ms}\nend" if delay_ms else ""
    script.write_text(
        _SCRIPT
        % {
            "token": token,
            "method": method,
            "path": path,
            "body": body,
            "run": uuid.uuid4().hex[:12],
            "pacing": pacing,
        }
    )
    before = _processes() if server_pid is not None else {}
    result = subprocess.run(
        [
            wrk,
            f"-t{min(WRK_THREADS, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout=10s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result line:\n{result.stdout}\n{result.stderr}")
    data = json.loads(line.removeprefix("RESULT "))
    cpu = (
        cpu_per_request(before, _processes(), server_pid=server_pid, requests=data["requests"])
        if server_pid is not None
        else {}
    )
    return Sample(
        rps=data["requests"] / data["seconds"],
        p50_ms=data["p50_ms"],
        p99_ms=data["p99_ms"],
        errors=data["errors"],
        cpu_ms=cpu,
    )


def run(quick: bool) -> list[Row]:
    from regions.devstack.processes import free_port
    from tests.harness.stack import harness_session

    wrk = ensure_wrk()
    rounds, seconds = (3, 3) if quick else (9, 4)
    root = Path(tempfile.mkdtemp(prefix="bench-api-"))
    with harness_session(codes=("eu-west-1",), replicas=1) as harness:
        stack = harness.region("eu-west-1")
        env = stack.env()
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        seeded = seed()
        from django.db import connections

        connections.close_all()
        base_env = {
            **stack.process_env(),
            "DJANGO_SETTINGS_MODULE": "settings.production",
            "RATE_LIMIT_CRITICAL": "1000000000/60",  # the limiter runs on every request but never refuses
        }
        ports = {"full": stack.web_port, "bare": free_port()}
        servers = [
            start_server("full", ports["full"], base_env, root),
            start_server(
                "bare", ports["bare"], {**base_env, "DJANGO_SETTINGS_MODULE": "bench.api_bare_settings"}, root
            ),
        ]
        try:
            read_path = f"/api/v1/orgs/{seeded['slug']}/documents/{seeded['document']}"
            create_path = f"/api/v1/orgs/{seeded['slug']}/documents"
            body = json.dumps({"project": seeded["project"], "title": "wrk", "body": "y" * 500})
            scenarios = {"read": ("GET", read_path, ""), "create": ("POST", create_path, body)}
            for stack_name, port in ports.items():  # both answer before anything is timed
                assert check(port, "GET", read_path, seeded["token"], None) == 200, stack_name
                assert check(port, "POST", create_path, seeded["token"], body) == 201, stack_name

            pids = {name: server.pid for name, server in zip(ports, servers, strict=True)}

            def load(
                stack_name: str, scenario: str, seconds: int, *, measure: bool = False, **pacing: int
            ) -> Sample:
                method, path, payload = scenarios[scenario]
                return wrk_run(
                    wrk,
                    ports[stack_name],
                    method=method,
                    path=path,
                    token=seeded["token"],
                    body=payload,
                    seconds=seconds,
                    root=root,
                    server_pid=pids[stack_name] if measure else None,
                    **pacing,
                )

            def show(label: str, stack_name: str, sample: Sample) -> None:
                print(
                    f"  {label} {stack_name}: {sample.rps:8.1f} req/s p50 {sample.p50_ms:.1f} ms "
                    f"p99 {sample.p99_ms:.1f} ms errors {sample.errors}"
                    + "".join(f" {group} {ms:.2f} ms/req" for group, ms in sample.cpu_ms.items()),
                    file=sys.stderr,
                )

            # Warm-up (not counted): every worker connected, code paths and caches warm.
            for scenario in scenarios:
                for stack_name in ports:
                    load(stack_name, scenario, WARMUP_SECONDS)
            samples: dict[tuple[str, str], list[Sample]] = {}
            # Short rounds, each pair back to back in alternating order: a pair sees the same
            # background load, so the median of the per-pair ratios is robust on a shared machine.
            for round_index in range(rounds):
                order = ("full", "bare") if round_index % 2 == 0 else ("bare", "full")
                for scenario in scenarios:
                    for stack_name in order:
                        sample = load(stack_name, scenario, seconds, measure=True)
                        show(f"round {round_index + 1} {scenario:6}", stack_name, sample)
                        samples.setdefault((scenario, stack_name), []).append(sample)
            # A fixed load, well under both servers' capacity: the latency a client sees there.
            paced: dict[str, list[Sample]] = {"full": [], "bare": []}
            for round_index in range(rounds):
                for stack_name in ("full", "bare") if round_index % 2 == 0 else ("bare", "full"):
                    sample = load(
                        stack_name,
                        "read",
                        seconds,
                        connections=FIXED_LOAD_CONNECTIONS,
                        delay_ms=FIXED_LOAD_DELAY_MS,
                    )
                    show(f"round {round_index + 1} fixed load", stack_name, sample)
                    paced[stack_name].append(sample)
            # One client at a time: the added cost per request, without queueing on 2 busy cores.
            single: dict[tuple[str, str], list[float]] = {}
            for round_index in range(rounds):
                for scenario, (method, path, payload) in scenarios.items():
                    for stack_name in ("full", "bare") if round_index % 2 == 0 else ("bare", "full"):
                        single.setdefault((scenario, stack_name), []).append(
                            one_client_ms(
                                ports[stack_name],
                                method=method,
                                path=path,
                                token=seeded["token"],
                                body=payload,
                                count=60,
                            )
                        )
            from saas.models import Document, IdempotencyRecord

            documents, records = Document.objects.count(), IdempotencyRecord.objects.count()
            connections.close_all()
        finally:
            for server in servers:
                server.stop()
    shutil.rmtree(root, ignore_errors=True)

    def pair_ratio(scenario: str) -> float:
        pairs = zip(samples[(scenario, "full")], samples[(scenario, "bare")], strict=True)
        return float(statistics.median(full.rps / bare.rps for full, bare in pairs))

    def med(scenario: str, stack_name: str, attr: str) -> float:
        return float(statistics.median(getattr(s, attr) for s in samples[(scenario, stack_name)]))

    rows = []
    for scenario, target in (("read", 0.90), ("create", 0.75)):
        ratio = pair_ratio(scenario)
        bare = med(scenario, "bare", "rps")
        full = ratio * bare  # so that the table's ratio is the median of the paired ratios
        errors = sum(s.errors for name in ("full", "bare") for s in samples[(scenario, name)])
        rows.append(
            Row(
                benchmark=NAME,
                figure=f"document {scenario}"
                + (" with Idempotency-Key" if scenario == "create" else "")
                + ", full stack",
                value=full,
                unit="req/s",
                baseline=bare,
                baseline_label="same view on bare DRF, middleware off",
                target=f"ratio >= {target:.2f}",
                passed=ratio >= target and errors == 0,
                notes=(
                    f"p50/p99 full {med(scenario, 'full', 'p50_ms'):.1f}/"
                    f"{med(scenario, 'full', 'p99_ms'):.1f} ms, "
                    f"bare {med(scenario, 'bare', 'p50_ms'):.1f}/{med(scenario, 'bare', 'p99_ms'):.1f} ms; "
                    f"median full {med(scenario, 'full', 'rps'):.0f} req/s; "
                    f"ratio = median of {rounds} paired {seconds}s rounds; "
                    f"{CONNECTIONS} connections, {GUNICORN_WORKERS} sync workers; "
                    f"non-2xx/socket errors {errors}"
                ),
            )
        )
    full_p99 = float(statistics.median(s.p99_ms for s in paced["full"]))
    bare_p99 = float(statistics.median(s.p99_ms for s in paced["bare"]))
    paced_errors = sum(s.errors for name in ("full", "bare") for s in paced[name])
    rows.append(
        Row(
            benchmark=NAME,
            figure=f"document read p99 at a fixed load ({FIXED_LOAD_CONNECTIONS} clients, "
            f"one request each per {FIXED_LOAD_DELAY_MS} ms + latency), full stack",
            value=full_p99,
            unit="ms",
            baseline=bare_p99,
            baseline_label="same load on bare DRF",
            target="informational (recorded; errors 0)",
            passed=None if paced_errors == 0 else False,
            notes=(
                f"offered about {statistics.median(s.rps for s in paced['full']):.0f} req/s full, "
                f"{statistics.median(s.rps for s in paced['bare']):.0f} req/s bare; p50 full "
                f"{statistics.median(s.p50_ms for s in paced['full']):.1f} ms, bare "
                f"{statistics.median(s.p50_ms for s in paced['bare']):.1f} ms; median of {rounds} paired "
                f"{seconds}s runs; errors {paced_errors}"
            ),
        )
    )
    for scenario in scenarios:
        full_ms = float(statistics.median(single[(scenario, "full")]))
        bare_ms = float(statistics.median(single[(scenario, "bare")]))
        rows.append(
            Row(
                benchmark=NAME,
                figure=f"document {scenario}, one client at a time, full stack (latency)",
                value=full_ms,
                unit="ms",
                baseline=bare_ms,
                baseline_label="bare DRF",
                target="informational (bare/full shown in notes)",
                passed=None,
                notes=f"bare/full = {bare_ms / full_ms:.2f}; median of {rounds} rounds x 60 one by one",
            )
        )
    for scenario in scenarios:
        cpu = {
            (stack_name, group): float(
                statistics.median(x.cpu_ms[group] for x in samples[(scenario, stack_name)])
            )
            for stack_name in ("full", "bare")
            for group in CPU_GROUPS
        }
        rows.append(
            Row(
                benchmark=NAME,
                figure=f"document {scenario}: CPU per request in the gunicorn workers, full stack",
                value=cpu[("full", "gunicorn")],
                unit="ms",
                baseline=cpu[("bare", "gunicorn")],
                baseline_label="bare DRF",
                target="informational (where the ratio goes)",
                passed=None,
                notes=(
                    f"CPU per request (utime+stime from /proc, median of {rounds} saturated runs): "
                    + "; ".join(
                        f"{group} full {cpu[('full', group)]:.2f} ms, bare {cpu[('bare', group)]:.2f} ms"
                        for group in CPU_GROUPS
                    )
                    + " (postgres and redis: every such process on the machine)"
                ),
            )
        )
    print(f"  documents {documents}, idempotency records {records}", file=sys.stderr)
    return rows


def main() -> None:
    cli(NAME, __doc__, run)


if __name__ == "__main__":
    main()
