"""Terraform: format, validation, residency of the plans, a security scan, and a
real apply of the global stack plus one full region (eu-west-1) against
moto_server, re-planned with no drift, read back through boto3, and destroyed.

The apply and the side plans are started when the session starts
(``tests/terraform/early.py``, through the ``terraform_early`` fixture of
``tests/conftest.py``): their provider waits overlap the rest of the suite.
Here the static checks run first, then the tests of the applied stack, and the
destroy last. See terraform/README.md, "Tests".
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any

import pytest

from regions.registry import load_registry
from residency.terraform_plan import UNKNOWN_SOURCE, check_global_plan, check_region_plan, iter_resources
from tests.terraform.early import FLEET, GLOBAL_ROOT, REGION_ROOT, Early
from tests.terraform.tf import REPO, TERRAFORM, MotoServer, Result, Workspace

pytestmark = pytest.mark.slow

EU = {"eu-west-1", "eu-central-1"}
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


@dataclass
class Fleet:
    """The fleet root (global stack + eu-west-1), applied in the background since the session started."""

    early: Early
    _applied: Result | None = None
    _replan: Result | None = None
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def workspace(self) -> Workspace:
        return self.early.workspace

    @property
    def moto(self) -> MotoServer:
        return self.early.moto

    def applied(self) -> tuple[Result, Result]:
        """Wait for the apply, then re-plan once (cached)."""
        if self._applied is None:
            assert FLEET not in self.early.inits, self.early.inits[FLEET]
            apply = self.early.apply
            assert apply is not None and apply.proc is not None
            code = apply.proc.wait(timeout=600)
            self._applied = Result(["apply"], code, apply.tail(60), "")
            if code == 0:
                self._replan = self.workspace.run(
                    FLEET,
                    ["plan", "-detailed-exitcode", "-input=false", "-parallelism=20", "-lock=false"],
                    timeout=240,
                )
                outputs = self.workspace.run(FLEET, ["output", "-json"])
                self.outputs = {k: v["value"] for k, v in json.loads(outputs.stdout).items()}
        assert self._applied.returncode == 0, f"apply failed:\n{self._applied.output}"
        assert self._replan is not None
        return self._applied, self._replan


@pytest.fixture(scope="module")
def early(terraform_early: Early) -> Early:
    return terraform_early.ready()


@pytest.fixture(scope="module")
def workspace(early: Early) -> Workspace:
    return early.workspace


@pytest.fixture(scope="module")
def moto(early: Early) -> MotoServer:
    return early.moto


@pytest.fixture(scope="module")
def fleet(early: Early) -> Fleet:
    return Fleet(early)


@pytest.fixture(scope="module")
def registry():
    return load_registry(REPO / "regions" / "registry.yaml")


@dataclass
class RootPlan:
    result: Result
    plan: dict[str, Any] | None


@pytest.fixture(scope="module")
def root_plans(early: Early) -> dict[str, RootPlan]:
    """The production roots (and the refusal cases), planned side by side since the session started."""
    for root, output in early.inits.items():
        assert root == FLEET, output  # a failed init of a side root fails every plan test
    plans = {}
    for name, side in early.side_plans.items():
        process = side.process
        assert process.proc is not None
        code = process.proc.wait(timeout=600)
        result = Result(["plan", name], code, process.log_path.read_text(), "")
        plans[name] = RootPlan(
            result, early.workspace.show_json(side.root, f"{name}.tfplan") if code == 0 else None
        )
    return plans


def planned(root_plans: dict[str, RootPlan], name: str) -> dict[str, Any]:
    case = root_plans[name]
    assert case.plan is not None, case.result.output
    return case.plan


# ---------------------------------------------------------------- static checks


def test_fmt_check_recursive() -> None:
    for directory in ("terraform", "tests/terraform/fixtures"):
        proc = subprocess.run(
            [
                "timeout",
                "--foreground",
                "60",
                TERRAFORM,
                "fmt",
                "-check",
                "-recursive",
                "-no-color",
                directory,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"terraform fmt would change:\n{proc.stdout}{proc.stderr}"


# The first test that needs root_plans also waits for its plans (and starts the apply).
@pytest.mark.timeout(600)
@pytest.mark.parametrize("root", [REGION_ROOT, GLOBAL_ROOT])
def test_validate_offline(workspace: Workspace, root_plans: dict[str, RootPlan], root: str) -> None:
    # root_plans ran `terraform init -plugin-dir=...` in every root: no network.
    result = workspace.run(root, ["validate"])
    assert result.returncode == 0, result.output
    assert "Success" in result.stdout


def test_checkov_finds_nothing_and_every_suppression_has_a_reason() -> None:
    if not CHECKOV.exists():
        pytest.fail(
            f"{CHECKOV} is missing: run `make test` (it builds .venv-checkov from requirements-checkov.txt)"
        )
    skips = []
    for path in sorted((REPO / "terraform").rglob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" in line:
                skips.append((path.relative_to(REPO), number, line.strip()))
                match = re.search(r"checkov:skip=(CKV2?_AWS_\d+):(.+)$", line)
                assert match and len(match.group(2).strip()) >= 15, (
                    f"{path}:{number} suppresses a check without a reason"
                )
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    proc = subprocess.run(
        [
            "nice",
            "-n",
            "10",
            "timeout",
            "--foreground",
            "240",
            str(CHECKOV),
            "--directory",
            "terraform",
            "--framework",
            "terraform",
            "--output",
            "json",
            "--quiet",
            "--skip-download",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.stdout.strip(), proc.stderr[-3000:]
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']})"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert passed > 100
    assert proc.returncode == 0


# ---------------------------------------------------------------- residency of the plans


def test_region_plan_eu_never_leaves_the_zone(root_plans: dict[str, RootPlan], registry) -> None:
    plan = planned(root_plans, "eu-west-1")
    report = check_region_plan(plan, registry=registry, region_code="eu-west-1")
    assert report.ok, report.findings
    assert set(report.resources.values()) == EU
    # No US or APAC region is named anywhere in an EU plan.
    text = json.dumps(plan)
    for other in ("us-east-1", "ap-south-1", "us-west-2", "ap-southeast-1"):
        assert other not in text
    copies = {c.address: c for c in report.copies}
    replica = copies["module.region.aws_db_instance.replica"]
    assert replica.destination == "eu-west-1"
    standby = copies["module.region.module.standby[0].aws_db_instance.standby"]
    # The source ARN is known after apply; test_state_keeps_region_in_zone checks it.
    assert (standby.destination, standby.sources) == ("eu-central-1", (UNKNOWN_SOURCE,))

    # The same checker fails the plan if anything moves out of the zone.
    moved = json.loads(text.replace('"eu-central-1"', '"us-east-1"'))
    findings = check_region_plan(moved, registry=registry, region_code="eu-west-1").findings
    rules = {f.rule for f in findings}
    assert {"terraform.resource_outside_zone", "terraform.reference_outside_zone"} <= rules
    assert any("module.standby[0].aws_db_instance.standby" in f.address for f in findings)


def test_region_plan_without_standby_stays_home(root_plans: dict[str, RootPlan], registry) -> None:
    plan = planned(root_plans, "ap-south-1")
    report = check_region_plan(plan, registry=registry, region_code="ap-south-1")
    assert report.ok, report.findings
    assert set(report.resources.values()) == {"ap-south-1"}
    assert report.regions_referenced == {"ap-south-1"}
    assert not any("standby" in address for address in report.resources)


def test_registry_standby_outside_the_zone_fails_plan(root_plans: dict[str, RootPlan]) -> None:
    result = root_plans["bad-registry"].result
    assert result.returncode != 0
    message = " ".join(result.stdout.split())
    assert "a standby must be another region of the same residency zone" in message
    assert "eu-west-1 (zone EU) -> us-east-1 (zone US)" in message
    assert "regions.E007" in message


def test_region_module_refuses_a_standby_outside_the_zone(root_plans: dict[str, RootPlan]) -> None:
    result = root_plans["cross-zone-module"].result
    assert result.returncode != 0
    message = " ".join(result.stdout.split())
    assert "Residency: refusing a standby of region eu-west-1 (zone EU) in us-east-1" in message


def test_global_plan_routes_and_fails_over_only_inside_zones(
    root_plans: dict[str, RootPlan], registry
) -> None:
    plan = planned(root_plans, "global")
    report = check_global_plan(plan, registry=registry)
    assert report.ok, report.findings

    resources = {r.address: r.values for r in iter_resources(plan) if r.mode == "managed"}
    checks = {a: v for a, v in resources.items() if ".aws_route53_health_check." in a}
    assert len(checks) == len(registry.codes)
    assert {v["resource_path"] for v in checks.values()} == {"/health/ready"}
    assert {v["fqdn"] for v in checks.values()} == {r.public_host for r in registry.regions.values()}

    failover = {a: v for a, v in resources.items() if ".aws_route53_record.failover[" in a}
    secondaries = {
        a.split('["')[1].split("/")[0]: v["alias"][0]["name"]
        for a, v in failover.items()
        if "/SECONDARY" in a
    }
    assert set(secondaries) == {"eu-west-1", "eu-central-1"}  # the registry's standbys
    assert ".eu-central-1.elb." in secondaries["eu-west-1"]
    assert ".eu-west-1.elb." in secondaries["eu-central-1"]

    latency = [v for a, v in resources.items() if ".aws_route53_record.zone_entry[" in a]
    by_name: dict[str, set[str]] = {}
    for record in latency:
        by_name.setdefault(record["name"], set()).add(record["latency_routing_policy"][0]["region"])
    assert by_name == {
        "eu.api.saas.example.com": EU,
        "us.api.saas.example.com": {"us-east-1"},
        "apac.api.saas.example.com": {"ap-south-1"},
    }

    # The checker notices a failover pair that would cross zones.
    crossed = json.loads(
        json.dumps(plan).replace("saas-eu-central-1-123.eu-central-1", "saas-us-east-1-123.us-east-1")
    )
    assert "terraform.routing_crosses_zones" in {
        f.rule for f in check_global_plan(crossed, registry=registry).findings
    }


# ---------------------------------------------------------------- the applied fleet (moto)


@pytest.mark.timeout(600)
def test_apply_then_replan_shows_no_drift(fleet: Fleet) -> None:
    _, replan = fleet.applied()
    assert replan.returncode == 0, "re-plan after apply is not empty (exit 2 = changes):\n" + replan.output
    assert "No changes." in replan.stdout


def test_state_keeps_region_in_zone_and_no_secret(fleet: Fleet, registry) -> None:
    fleet.applied()
    state = fleet.workspace.show_json(FLEET)
    report = check_region_plan(state, registry=registry, region_code="eu-west-1", module="module.region")
    assert report.ok, report.findings
    assert len(report.resources) > 100
    assert set(report.resources.values()) == EU  # the region and its standby
    assert report.regions_referenced <= EU
    standby = [a for a in report.resources if ".module.standby[0]." in a]
    assert standby and {report.resources[a] for a in standby} == {"eu-central-1"}
    copies = {c.address: c for c in report.copies}
    assert copies["module.region.aws_db_instance.replica"].destination == "eu-west-1"
    standby_copy = copies["module.region.module.standby[0].aws_db_instance.standby"]
    assert (standby_copy.destination, standby_copy.sources) == ("eu-central-1", ("eu-west-1",))

    # The database password and Django's SECRET_KEY are in Secrets Manager and
    # nowhere in the state (write-only arguments).
    secrets = fleet.moto.client("secretsmanager", "eu-west-1")
    arns = fleet.outputs["app_secret_arns"]
    database_url = secrets.get_secret_value(SecretId=arns["DATABASE_URL"])["SecretString"]
    replica_urls = secrets.get_secret_value(SecretId=arns["REPLICA_DATABASE_URLS"])["SecretString"]
    secret_key = secrets.get_secret_value(SecretId=arns["SECRET_KEY"])["SecretString"]
    password = re.match(r"postgres://saas:([^@]+)@", database_url).group(1)  # type: ignore[union-attr]
    assert len(password) >= 32 and len(secret_key) >= 50
    assert f"saas:{password}@" in replica_urls
    assert fleet.outputs["database"]["primary"] in database_url
    assert fleet.outputs["database"]["replicas"][0] in replica_urls
    raw_state = (fleet.workspace.path(FLEET) / "terraform.tfstate").read_text()
    assert password not in raw_state
    assert secret_key not in raw_state
    # Fleet-wide secrets are created empty; an operator copies the fleet's value in.
    assert {"DIRECTORY_SECRET", "AUDIT_SIGNING_KEYS", "METRICS_TOKEN"} <= set(arns)


def test_readback_databases(fleet: Fleet) -> None:
    fleet.applied()
    rds = fleet.moto.client("rds", "eu-west-1")
    kms_eu = fleet.moto.client("kms", "eu-west-1")
    primary = rds.describe_db_instances(DBInstanceIdentifier="saas-eu-west-1-primary")["DBInstances"][0]
    replica = rds.describe_db_instances(DBInstanceIdentifier="saas-eu-west-1-replica-1")["DBInstances"][0]
    assert primary["StorageEncrypted"] is True
    key = kms_eu.describe_key(KeyId=primary["KmsKeyId"])["KeyMetadata"]
    assert key["KeyManager"] == "CUSTOMER" and ":eu-west-1:" in key["Arn"]
    assert kms_eu.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    assert primary["BackupRetentionPeriod"] == 14
    assert primary["PubliclyAccessible"] is False
    assert primary["MultiAZ"] is True
    assert set(primary["ReadReplicaDBInstanceIdentifiers"]) == {
        "saas-eu-west-1-replica-1",
        "arn:aws:rds:eu-central-1:123456789012:db:saas-eu-west-1-standby",
    }
    assert replica["ReadReplicaSourceDBInstanceIdentifier"] == "saas-eu-west-1-primary"
    assert replica["StorageEncrypted"] is True and replica["KmsKeyId"] == primary["KmsKeyId"]

    standby = fleet.moto.client("rds", "eu-central-1").describe_db_instances(
        DBInstanceIdentifier="saas-eu-west-1-standby"
    )["DBInstances"][0]
    assert standby["ReadReplicaSourceDBInstanceIdentifier"] == primary["DBInstanceArn"]
    assert standby["StorageEncrypted"] is True
    assert ":eu-central-1:" in standby["KmsKeyId"]
    assert ":eu-central-1:" in standby["DBInstanceArn"]


def test_readback_redis(fleet: Fleet) -> None:
    fleet.applied()
    cache = fleet.moto.client("elasticache", "eu-west-1")
    group = cache.describe_replication_groups(ReplicationGroupId="saas-eu-west-1")["ReplicationGroups"][0]
    assert group["AtRestEncryptionEnabled"] is True
    assert group["TransitEncryptionEnabled"] is True
    assert group["AuthTokenEnabled"] is True
    assert ":eu-west-1:" in group["KmsKeyId"]
    assert group["AutomaticFailover"] == "enabled" and group["MultiAZ"] == "enabled"
    assert len(group["MemberClusters"]) == 2
    member = cache.describe_cache_clusters(CacheClusterId=group["MemberClusters"][0])["CacheClusters"][0]
    assert [g["SecurityGroupId"] for g in member["SecurityGroups"]]


def test_readback_load_balancer_and_health_checks(fleet: Fleet, registry) -> None:
    fleet.applied()
    elb = fleet.moto.client("elbv2", "eu-west-1")
    lb = elb.describe_load_balancers(Names=["saas-eu-west-1"])["LoadBalancers"][0]
    groups = elb.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])["TargetGroups"]
    assert [g["HealthCheckPath"] for g in groups] == ["/health/ready"]
    listeners = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    assert [(x["Port"], x["Protocol"]) for x in listeners] == [(443, "HTTPS")]
    assert listeners[0]["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")

    route53 = fleet.moto.client("route53", "us-east-1")
    check_id = fleet.outputs["health_check_ids"]["eu-west-1"]
    config = route53.get_health_check(HealthCheckId=check_id)["HealthCheck"]["HealthCheckConfig"]
    assert config["ResourcePath"] == "/health/ready"
    assert config["Type"] == "HTTPS"
    assert config["FullyQualifiedDomainName"] == "eu-west-1.api.saas.example.com"

    autoscaling = fleet.moto.client("application-autoscaling", "eu-west-1")
    targets = autoscaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    assert sorted(t["ResourceId"] for t in targets) == [
        "service/saas-eu-west-1/web",
        "service/saas-eu-west-1/worker",
    ]


def test_readback_region_deny_guardrail(fleet: Fleet) -> None:
    fleet.applied()
    org = fleet.moto.client("organizations", "us-east-1")
    attached = {
        target: [
            json.loads(org.describe_policy(PolicyId=p["Id"])["Policy"]["Content"])
            for p in org.list_policies_for_target(TargetId=target, Filter="SERVICE_CONTROL_POLICY")[
                "Policies"
            ]
            if p["Name"].startswith("region-deny-")
        ]
        for target in (fleet.moto.org_root, fleet.moto.eu_ou)
    }
    [fleet_policy] = attached[fleet.moto.org_root]
    [eu_policy] = attached[fleet.moto.eu_ou]
    statement = (
        fleet_policy["Statement"][0]
        if isinstance(fleet_policy["Statement"], list)
        else fleet_policy["Statement"]
    )
    assert statement["Effect"] == "Deny"
    assert set(statement["Condition"]["StringNotEquals"]["aws:RequestedRegion"]) == {
        "eu-west-1",
        "eu-central-1",
        "us-east-1",
        "ap-south-1",
    }
    assert "iam:*" in statement["NotAction"] and "route53:*" in statement["NotAction"]
    eu_statement = (
        eu_policy["Statement"][0] if isinstance(eu_policy["Statement"], list) else eu_policy["Statement"]
    )
    assert set(eu_statement["Condition"]["StringNotEquals"]["aws:RequestedRegion"]) == EU


@pytest.mark.timeout(600)
def test_destroy_removes_everything(fleet: Fleet) -> None:
    """Last of the module: ``terraform destroy`` of the whole fleet leaves nothing, in the state or in AWS."""
    fleet.applied()
    managed = [r for r in iter_resources(fleet.workspace.show_json(FLEET)) if r.mode == "managed"]
    # No refresh: the re-plan above has just refreshed the state (no drift).
    process = fleet.workspace.start(
        FLEET,
        ["destroy", "-auto-approve", "-input=false", "-refresh=false", "-parallelism=20", "-lock=false"],
        name="fleet-destroy",
        timeout=420,
    )
    assert process.proc is not None
    code = process.proc.wait(timeout=480)
    log = process.log_path.read_text()
    assert code == 0, log[-5000:]
    assert f"Resources: {len(managed)} destroyed." in log
    assert not [r for r in iter_resources(fleet.workspace.show_json(FLEET)) if r.mode == "managed"]

    client = fleet.moto.client
    for region in sorted(EU):
        assert client("rds", region).describe_db_instances()["DBInstances"] == []
        assert [v for v in client("ec2", region).describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []
        assert client("secretsmanager", region).list_secrets()["SecretList"] == []
        keys = client("kms", region).list_keys()["Keys"]
        states = {
            client("kms", region).describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] for k in keys
        }
        assert states <= {"PendingDeletion"}, states
    assert client("elasticache", "eu-west-1").describe_replication_groups()["ReplicationGroups"] == []
    assert client("elbv2", "eu-west-1").describe_load_balancers()["LoadBalancers"] == []
    # As in AWS, a deleted ECS cluster or service is still described, as INACTIVE.
    ecs = client("ecs", "eu-west-1")
    clusters = ecs.list_clusters()["clusterArns"]
    if clusters:
        assert {c["status"] for c in ecs.describe_clusters(clusters=clusters)["clusters"]} == {"INACTIVE"}
    services = ecs.list_services(cluster="saas-eu-west-1")["serviceArns"]
    if services:
        described = ecs.describe_services(cluster="saas-eu-west-1", services=services)["services"]
        assert {s["status"] for s in described} == {"INACTIVE"}
    route53 = client("route53", "us-east-1")
    assert route53.list_hosted_zones()["HostedZones"] == []
    assert route53.list_health_checks()["HealthChecks"] == []
