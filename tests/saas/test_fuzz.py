"""API fuzzing: schemathesis against the OpenAPI schema of a running region.

A real gunicorn process serves eu-west-1 over the harness (PostgreSQL primary
and streaming replicas, Redis). Schemathesis reads ``/api/schema/`` from it
and runs every phase (coverage of boundaries and negative values, random
fuzzing, stateful sequences) with the API token of an organization's admin
(the critical tier, so the budget is not spent on 429s; anonymous calls get a
high limit too). Half of the generated ids are real ones (a project, a
document, a spare member and token, an invitable user), so the fuzzer reaches
the objects and not only 404s.

It passes when no response is a 5xx and every response conforms to the schema:
status codes, content types, bodies, declared headers (schemathesis's
``--checks all``), plus our checks in ``tests/saas/fuzz_checks.py``: every
error is ``application/problem+json``, and every header of ours is declared.
A second part drives a standard-tier token over its limit and validates the
429s against the same schema.

``make test`` runs a fixed, derandomized budget (``DEFAULT_EXAMPLES`` per
operation and phase); ``make fuzz`` runs ``FUZZ_EXAMPLES`` (default 200 there)
with the seed ``FUZZ_SEED``. The figures line is printed, and written to
``FUZZ_FIGURES`` when set (``make fuzz`` puts it in ``.run/fuzz-figures.json``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from saas import services
from saas.models import ApiToken, Membership
from tests.harness.stack import REPO_ROOT
from tests.saas.factories import (
    DocumentFactory,
    MembershipFactory,
    OrganizationFactory,
    ProjectFactory,
    UserFactory,
    token_for,
)
from tests.saas.fuzz_checks import DROPPED_LOG_ENV, PROTECTED_IDS_ENV, problem_json_on_errors

DEFAULT_EXAMPLES = 10
DEFAULT_SEED = 20261203
SERVER_ERRORS = {"ST101", "ST102"}
SCHEMA_FAILURES = {f"ST1{n:02d}" for n in range(3, 12)} | {"ST901"}


def schemathesis_config(*, org: str, user: str, ids: dict[str, str], email: str) -> str:
    """Fixed org and user path parameters; real ids and an invitable email half of the time."""
    lines = ["[parameters]", f'"path.org_slug" = "{org}"', f'"path.user_id" = "{user}"']
    for location, kind in (
        ("path.project_id", "project"),
        ("body.project", "project"),
        ("path.document_id", "document"),
        ("path.member_id", "member"),
        ("path.token_id", "token"),
    ):
        lines.append(f'"{location}" = {{ dictionary = "{kind}", probability = 0.5 }}')
    lines.append('"body.email" = { dictionary = "email", probability = 0.3 }')
    for kind, value in {**ids, "email": email}.items():
        lines += [f"[dictionaries.{kind}]", f'values = ["{value}"]']
    return "\n".join(lines) + "\n"


def run_schemathesis(
    base_url: str, token: str, config: Path, workdir: Path, *, protected: list[str]
) -> dict[str, Any]:
    examples = os.environ.get("FUZZ_EXAMPLES")
    report, dropped = workdir / "report.json", workdir / "dropped.log"
    argv = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{base_url}/api/schema/",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--max-examples",
        examples or str(DEFAULT_EXAMPLES),
        "--workers",
        "2",
        "--max-redirects",
        "0",
        "--request-timeout",
        "30",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
        "--output-sanitize",
        "false",
    ]
    if os.environ.get("FUZZ_PHASES"):
        argv += ["--phases", os.environ["FUZZ_PHASES"]]
    if examples is None:  # make test: the same cases every run
        argv.append("--generation-deterministic")
    else:
        argv += ["--seed", os.environ.get("FUZZ_SEED", str(DEFAULT_SEED)), "--generation-database", "none"]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.saas.fuzz_checks",
        "PYTHONPATH": str(REPO_ROOT),
        DROPPED_LOG_ENV: str(dropped),
        PROTECTED_IDS_ENV: ",".join(protected),
    }
    started = time.monotonic()
    # In the test's directory: schemathesis keeps a cache (.schemathesis/) in its working directory.
    run = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=3600)
    output = run.stdout + run.stderr
    (workdir / "schemathesis.txt").write_text(output)
    assert report.exists(), output[-5000:]
    result: dict[str, Any] = json.loads(report.read_text())
    result["output"] = output
    result["exit"] = run.returncode
    result["seconds"] = round(time.monotonic() - started, 1)
    result["dropped"] = Counter(dropped.read_text().splitlines()) if dropped.exists() else Counter()
    return result


def figures(result: dict[str, Any]) -> dict[str, Any]:
    by_code: Counter[str] = Counter()
    for failure in result["failures"]:
        by_code[failure["code"]] += failure.get("count", 1)
    return {
        "examples_per_operation": int(os.environ.get("FUZZ_EXAMPLES", DEFAULT_EXAMPLES)),
        "deterministic": "FUZZ_EXAMPLES" not in os.environ,
        "operations": result["operations"]["tested"],
        "generated": result["test_cases"]["generated"],
        "server_errors_5xx": sum(n for code, n in by_code.items() if code in SERVER_ERRORS),
        "schema_failures": sum(n for code, n in by_code.items() if code in SCHEMA_FAILURES),
        "other_failures": sum(
            n for code, n in by_code.items() if code not in SERVER_ERRORS | SCHEMA_FAILURES
        ),
        "errors": len(result.get("errors", [])),
        "dropped_st202": dict(result["dropped"]),
        "seconds": result["seconds"],
    }


@pytest.mark.slow
def test_fuzzing_the_api_finds_no_5xx_and_no_response_outside_the_schema(
    harness, transactional_db, region_web, rate_limits_reset, tmp_path: Path
):
    org = OrganizationFactory.create(slug="fuzzed")
    admin = MembershipFactory.create(organization=org, role=Membership.Role.ADMIN)
    spare = MembershipFactory.create(organization=org, role=Membership.Role.MEMBER)
    spare_token, _ = services.api_token_create(actor=spare, name="spare")
    project = ProjectFactory.create(organization=org)
    document = DocumentFactory.create(project=project)
    outsider = UserFactory.create()  # in this region, in no organization: invitable
    token = token_for(admin, tier=ApiToken.Tier.CRITICAL)
    watcher = MembershipFactory.create(organization=org, role=Membership.Role.MEMBER)  # not fuzzed
    limited = token_for(watcher, tier=ApiToken.Tier.STANDARD)
    own_token = ApiToken.objects.get(organization=org, user=admin.user)
    watcher_token = ApiToken.objects.get(organization=org, user=watcher.user)
    eu = harness.region("eu-west-1")
    for replica in eu.replicas:
        replica.wait_for_replay(eu.primary.current_lsn())
    region_web(
        "eu-west-1",
        workers=2,
        RATE_LIMIT_ANONYMOUS="100000/60",
        RATE_LIMIT_CRITICAL="100000/60",
        RATE_LIMIT_STANDARD="5/60",
    )

    config = tmp_path / "schemathesis.toml"
    ids = {"project": project.pk, "document": document.pk, "member": spare.pk, "token": spare_token.pk}
    config.write_text(
        schemathesis_config(
            org=org.slug,
            user=str(admin.user_id),
            ids={k: str(v) for k, v in ids.items()},
            email=outsider.email,
        )
    )
    result = run_schemathesis(
        eu.base_url,
        token,
        config,
        tmp_path,
        protected=[str(x.pk) for x in (own_token, admin, watcher_token, watcher)],
    )
    found = figures(result)
    line = json.dumps(found, sort_keys=True)
    print(f"\n[fuzz] {line}")
    if os.environ.get("FUZZ_FIGURES"):
        Path(os.environ["FUZZ_FIGURES"]).write_text(line + "\n")

    own_token.refresh_from_db(using="default")
    assert own_token.revoked_at is None, "the fuzzer lost its own token: the run says little"
    assert Membership.objects.using("default").filter(pk=admin.pk).exists(), "the fuzzer lost its membership"
    assert found["operations"] >= 29 and found["generated"] > 0, result["output"][-3000:]
    assert found["server_errors_5xx"] == 0, result["output"][-20000:]
    assert found["schema_failures"] == 0, result["output"][-20000:]
    assert (found["other_failures"], found["errors"], result["exit"]) == (0, 0, 0), result["output"][-20000:]

    # 429 is schema-conforming too: a standard-tier token (5 a minute here) over its limit.
    schema = schemathesis.openapi.from_url(f"{eu.base_url}/api/schema/")
    operation = schema["/api/v1/orgs/{org_slug}/projects"]["GET"]
    statuses = []
    for _ in range(8):
        case = operation.Case(
            path_parameters={"org_slug": org.slug}, headers={"Authorization": f"Bearer {limited}"}
        )
        response = case.call(base_url=eu.base_url)
        statuses.append(response.status_code)
        case.validate_response(response, additional_checks=[problem_json_on_errors])
    assert statuses[:5] == [200] * 5 and set(statuses[5:]) == {429}, statuses
