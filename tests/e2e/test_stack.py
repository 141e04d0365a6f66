"""End to end: the local stack of ``make run`` (two regions) as real processes, driven over HTTP only.

Every region has its own PostgreSQL primary and streaming replica, Redis,
Celery worker and beat, and gunicorn, started by ``regions.devstack`` exactly
as ``make run`` starts them, on free loopback ports. Teardown stops every
process by PID.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from regions.devstack.processes import chown_for_service, free_port, pid_alive
from regions.devstack.stack import Stack, StackPlan
from tests.harness.stack import write_registry

REGIONS = ("eu-west-1", "us-east-1")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Stack, dict[str, Any]]]:
    root = Path(tempfile.mkdtemp(prefix="saas-e2e-"))
    chown_for_service(root)
    registry, _ports = write_registry(root)
    ports = {code: (free_port(), free_port(), free_port()) for code in REGIONS}
    plan = StackPlan.make(root=root, codes=REGIONS, registry_path=registry, embedded=False, ports=ports)
    running = Stack(plan)
    try:
        description = running.up()
        yield running, description
    finally:
        running.down()
        pids = running.pids()
        shutil.rmtree(root, ignore_errors=True)
        assert not [pid for pid in pids if pid_alive(pid)], "processes left behind"


def url(description: dict[str, Any], code: str, path: str) -> str:
    return str(description["regions"][code]["base_url"]) + path


def client() -> httpx.Client:
    return httpx.Client(timeout=20, follow_redirects=False)


def poll(fetch: Any, accept: Any, *, timeout: float) -> tuple[httpx.Response, float]:
    """Call ``fetch`` until ``accept(response)``; return it and the seconds it took."""
    began = time.monotonic()
    while True:
        response = fetch()
        if accept(response):
            return response, time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise AssertionError(
                f"gave up after {timeout}s; last answer {response.status_code} {response.text[:300]}"
            )
        time.sleep(0.05)


@pytest.fixture(scope="module")
def eu_tenant(stack) -> dict[str, str]:
    _stack, description = stack
    email = f"e2e-{uuid.uuid4().hex[:8]}@e2e.example"
    slug = f"e2e-{uuid.uuid4().hex[:8]}"
    password = "a-long-e2e-password-" + uuid.uuid4().hex[:8]
    with client() as http:
        signed_up = http.post(
            url(description, "eu-west-1", "/api/v1/signup"),
            json={"email": email, "password": password, "zone": "EU", "organization_slug": slug},
        )
        signup_done = time.monotonic()
        assert signed_up.status_code == 201, signed_up.text
        token = http.post(
            url(description, "eu-west-1", "/api/v1/auth/token"),
            json={"email": email, "password": password, "organization": slug},
        )
        assert token.status_code == 201, token.text
    return {
        "email": email,
        "slug": slug,
        "password": password,
        "token": token.json()["token"],
        "signup_done": str(signup_done),
    }


def test_directory_entry_replicates_to_the_us_within_two_seconds(stack, eu_tenant):
    _stack, description = stack
    path = f"/api/v1/orgs/{eu_tenant['slug']}"
    with client() as http:
        # Anonymous: only the replicated directory can tell us-east-1 where the org lives.
        redirected, _ = poll(
            lambda: http.get(url(description, "us-east-1", path)), lambda r: r.status_code == 307, timeout=10
        )
    elapsed = time.monotonic() - float(eu_tenant["signup_done"])
    assert elapsed <= 2.0, f"directory entry reached us-east-1 after {elapsed:.2f}s"
    assert redirected.headers["Location"] == url(description, "eu-west-1", path)


def test_eu_users_request_at_us_is_redirected_to_eu_with_method_path_and_query(stack, eu_tenant):
    _stack, description = stack
    auth = {"Authorization": f"Bearer {eu_tenant['token']}"}
    path = f"/api/v1/orgs/{eu_tenant['slug']}/projects?limit=5"
    with client() as http:
        answer = http.post(url(description, "us-east-1", path), json={"name": "x"}, headers=auth)
        assert answer.status_code == 307
        assert answer.headers["Location"] == url(description, "eu-west-1", path)
        problem = answer.json()
        assert problem["code"] == "wrong_region" and problem["region"] == "eu-west-1"
        followed = http.post(answer.headers["Location"], json={"name": "Roadmap"}, headers=auth)
        assert followed.status_code == 201, followed.text
        assert followed.headers["X-Served-By-Region"] == "eu-west-1"


def test_document_created_with_an_idempotency_key_and_retried_is_created_once(stack, eu_tenant):
    _stack, description = stack
    auth = {"Authorization": f"Bearer {eu_tenant['token']}"}
    base = url(description, "eu-west-1", f"/api/v1/orgs/{eu_tenant['slug']}")
    with client() as http:
        project = http.post(f"{base}/projects", json={"name": "Docs"}, headers=auth)
        assert project.status_code == 201, project.text
        body = {"project": project.json()["id"], "title": "Minutes", "body": "kept in the EU"}
        key = {"Idempotency-Key": f'"{uuid.uuid4()}"', **auth}
        first = http.post(f"{base}/documents", json=body, headers=key)
        retried = http.post(f"{base}/documents", json=body, headers=key)
        assert first.status_code == retried.status_code == 201, (first.text, retried.text)
        assert retried.headers.get("Idempotent-Replayed") == "true"
        assert first.json()["id"] == retried.json()["id"]
        listed = http.get(f"{base}/documents", params={"project": project.json()["id"]}, headers=auth)
        assert [d["id"] for d in listed.json()["results"]] == [first.json()["id"]]


def test_audit_is_clean_in_every_region_and_the_fleet_report_merges_them(stack, eu_tenant):
    _stack, description = stack
    admin = description["regions"]["eu-west-1"]["admin"]
    with client() as http:
        login = http.post(url(description, "eu-west-1", "/api/v1/auth/login"), json=admin)
        assert login.status_code == 200, login.text
        csrf = http.cookies["csrftoken-eu-west-1"]
        fleet = http.post(
            url(description, "eu-west-1", "/internal/audit/fleet"),
            json={"regions": list(REGIONS)},
            headers={"X-CSRFToken": csrf},
        )
    assert fleet.status_code == 201, fleet.text
    report = fleet.json()["report"]
    assert report["kind"] == "fleet" and report["missing_regions"] == [] and report["rejected"] == []
    assert [r["region"] for r in report["regions"]] == list(REGIONS)
    for region in report["regions"]:
        failing = [(c["id"], c["summary"]) for c in region["checks"] if c["status"] != "pass"]
        assert failing == [], region["region"]
    assert report["summary"]["findings"] == 0


def test_the_printed_curl_examples_work_against_the_running_stack(stack):
    """The three examples make run prints (signup, wrong region, audit), run as printed by bash."""
    import subprocess

    from regions.devstack.stack import format_summary

    _stack, description = stack
    printed = format_summary(description)
    block = printed.split("Try:\n", 1)[1].split("\n\n", 1)[0]
    commands = [c for c in block.replace("\\\n", " ").splitlines() if c.strip().startswith("curl")]
    assert len(commands) == 4, block  # signup, wrong region, audit (login + run)
    outputs = []
    for command in commands:
        done = subprocess.run(
            # -w goes first: a printed line may end with a comment.
            ["bash", "-c", command.replace("curl ", "curl -w '\\n%{http_code}' ", 1)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, (command, done.stderr)
        outputs.append(done.stdout)
    status = [out.rsplit("\n", 1)[1] for out in outputs]
    assert status == ["201", "307", "200", "201"], outputs
    assert "wrong_region" in outputs[1]
    report = json.loads(outputs[3].rsplit("\n", 1)[0])["report"]
    assert report["region"] == "eu-west-1" and report["summary"]["findings"] == 0


def test_when_eu_web_stops_the_us_answers_503_not_a_redirect(stack, eu_tenant):
    running, description = stack
    path = f"/api/v1/orgs/{eu_tenant['slug']}"
    web = running.processes["eu-west-1"].web
    assert web is not None
    web.stop()
    stopped = time.monotonic()
    with client() as http:
        refused, _ = poll(
            lambda: http.get(url(description, "us-east-1", path)), lambda r: r.status_code == 503, timeout=15
        )
        marked_after = time.monotonic() - stopped
        assert marked_after <= 5.0, f"us-east-1 marked eu-west-1 unhealthy after {marked_after:.1f}s"
        assert refused.json()["code"] == "home_region_unavailable"
        assert int(refused.headers["Retry-After"]) > 0
        assert "Location" not in refused.headers
        # And it stays that way: never a redirect to anywhere else.
        for _ in range(5):
            again = http.get(
                url(description, "us-east-1", path), headers={"Authorization": f"Bearer {eu_tenant['token']}"}
            )
            assert again.status_code == 503 and "Location" not in again.headers


# --- The command line, on the embedded defaults -----------------------------------------------


def test_make_start_on_embedded_defaults_replicates_in_process_stops_cleanly_and_reuses_data(tmp_path):
    """``make start``/``make stop`` without PostgreSQL or Redis: SQLite per region, tasks in process."""
    import json
    import subprocess
    import sys

    from tests.harness.stack import REPO_ROOT

    registry, _ports = write_registry(tmp_path)
    root = tmp_path / "run"
    cli = [sys.executable, "-m", "regions.devstack"]
    common = ["--root", str(root), "--registry", str(registry), "--regions", "eu-west-1,us-east-1"]

    def start() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli, "start", "--embedded", *common], cwd=REPO_ROOT, capture_output=True, text=True, timeout=240
        )

    def stop() -> None:
        subprocess.run(
            [*cli, "stop", "--root", str(root)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
        )

    started = start()
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        assert "EMBEDDED defaults" in started.stdout and "Simulated:" in started.stdout
        description = json.loads((root / "stack.json").read_text())
        assert description["mode"] == "embedded"
        pids = [pid for region in description["regions"].values() for pid in region["pids"].values()]
        assert pids and all(pid_alive(pid) for pid in pids)
        assert description["regions"]["eu-west-1"]["primary_dsn"].startswith("sqlite:///")
        slug = description["regions"]["eu-west-1"]["demo"]["organizations"][0]
        with client() as http:
            # The demo organization reached us-east-1's directory through the in-process drain.
            answer, _ = poll(
                lambda: http.get(url(description, "us-east-1", f"/api/v1/orgs/{slug}")),
                lambda r: r.status_code == 307,
                timeout=20,
            )
            assert answer.headers["Location"] == url(description, "eu-west-1", f"/api/v1/orgs/{slug}")
    finally:
        stop()
    assert not [pid for pid in pids if pid_alive(pid)], "make stop left processes behind"

    # Running again reuses the data: same demo credentials, no second seed.
    again = start()
    try:
        assert again.returncode == 0, again.stderr[-3000:]
        second = json.loads((root / "stack.json").read_text())
        assert second["regions"]["eu-west-1"]["demo"] == description["regions"]["eu-west-1"]["demo"]
        token = second["regions"]["eu-west-1"]["demo"]["api_token"]
        with client() as http:
            me = http.get(
                url(second, "eu-west-1", "/api/v1/me"), headers={"Authorization": f"Bearer {token}"}
            )
            assert me.status_code == 200, me.text
    finally:
        stop()


def test_ctrl_c_on_make_run_stops_every_process_it_started(tmp_path):
    """``make run`` in the foreground; Ctrl-C (SIGINT to the terminal's process group) leaves nothing."""
    import json
    import os
    import signal
    import subprocess
    import sys

    from tests.harness.stack import REPO_ROOT

    registry, _ports = write_registry(tmp_path)
    root = tmp_path / "run"
    command = [sys.executable, "-m", "regions.devstack", "run", "--embedded", "--root", str(root)]
    command += ["--registry", str(registry), "--regions", "eu-west-1,us-east-1"]
    log = (tmp_path / "run.log").open("w")
    # Its own session, like a terminal's foreground job: Ctrl-C signals the whole group.
    supervisor = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        description: dict[str, Any] = {}

        def ready() -> bool:
            nonlocal description
            if supervisor.poll() is not None:
                raise AssertionError(f"make run exited early: {(tmp_path / 'run.log').read_text()[-3000:]}")
            try:
                description = json.loads((root / "stack.json").read_text())
            except (OSError, ValueError):
                return False
            return description.get("supervisor_pid") == supervisor.pid

        deadline = time.monotonic() + 240
        while not ready():
            assert time.monotonic() < deadline, "make run did not come up"
            time.sleep(0.5)
        pids = [pid for region in description["regions"].values() for pid in region["pids"].values()]
        assert pids and all(pid_alive(pid) for pid in pids)
        with client() as http:
            assert http.get(url(description, "eu-west-1", "/health/live")).status_code == 200

        os.killpg(supervisor.pid, signal.SIGINT)
        assert supervisor.wait(timeout=90) is not None
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait()
        log.close()
    assert not [pid for pid in pids if pid_alive(pid)], "Ctrl-C left processes behind"
    # Nothing else that names this stack's directory survives either (a grandchild the PIDs missed).
    leftovers = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(root).encode() in (entry / "cmdline").read_bytes():
                    leftovers.append(int(entry.name))
            except OSError:
                continue
    assert leftovers == [], f"orphans: {leftovers}"
