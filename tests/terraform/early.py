"""The long Terraform work, started when the test session starts.

The moto stage's time is nearly all provider waits (80 s per RDS instance,
60 s for the ALB): the processes sleep, the machine does not. So when a
session includes the Terraform tests, ``tests/conftest.py`` starts this work
at its first test, in a background thread, niced: moto_server, the fleet
apply (global stack + eu-west-1 with its standby) and the five side plans of
the production roots and refusal cases. The rest of the suite runs meanwhile;
by the time ``tests/terraform/test_terraform.py`` runs, it only re-plans,
reads back and destroys. Every process is stopped by PID at the end of the
session.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regions.devstack.processes import ManagedProcess
from regions.registry import load_registry
from tests.terraform.tf import MotoServer, Workspace

FLEET = "tests/terraform/fixtures/fleet"
REGION_ROOT = "terraform/envs/region"
GLOBAL_ROOT = "terraform/envs/global"
CROSS_ZONE_ROOT = "tests/terraform/fixtures/cross_zone_standby"


def region_vars(moto: MotoServer, code: str, **extra: Any) -> dict[str, Any]:
    return {
        "region_code": code,
        "dns_zone_id": "Z0123456789ABCDEFGHIJ",
        "image": "registry.example.invalid/saas:test",
        "aws_endpoints": moto.endpoints(),
        **extra,
    }


@dataclass
class SidePlan:
    root: str
    process: ManagedProcess


@dataclass
class Early:
    """moto, the fleet apply and the side plans, started in a background thread."""

    workspace: Workspace
    moto: MotoServer
    apply: ManagedProcess | None = None
    side_plans: dict[str, SidePlan] = field(default_factory=dict)
    inits: dict[str, str] = field(default_factory=dict)
    """Output of each ``terraform init`` that failed, by root."""
    error: BaseException | None = None
    _thread: threading.Thread | None = None
    _started: threading.Event = field(default_factory=threading.Event)
    _release: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def start(cls, root: Path) -> Early:
        (root / "moto").mkdir(parents=True)
        early = cls(Workspace(root / "work"), MotoServer(root / "moto"))
        early._thread = threading.Thread(target=early._run, name="terraform-early", daemon=True)
        early._thread.start()
        return early

    def ready(self, timeout: float = 300) -> Early:
        """Wait until everything is started (not finished); re-raise what went wrong."""
        if not self._started.wait(timeout):
            raise TimeoutError("the Terraform work did not start in time")
        if self.error is not None:
            raise RuntimeError("starting the Terraform work failed") from self.error
        return self

    def stop(self) -> None:
        self._started.wait(300)
        for process in [self.apply, *(plan.process for plan in self.side_plans.values())]:
            if process is not None:
                process.stop()
        self.moto.stop()
        self._release.set()
        if self._thread is not None:
            self._thread.join(30)

    # --- the background thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._start_moto()
            self._start_apply()
            self._start_side_plans()
        except BaseException as exc:  # re-raised by ready(), in a test
            self.error = exc
        finally:
            self._started.set()
        # The processes die with the thread that started them (PR_SET_PDEATHSIG is
        # per thread, see regions.devstack.processes): it lives until stop().
        self._release.wait()

    def _start_moto(self) -> None:
        moto = self.moto
        moto.start()
        # The management account's organization with SCPs enabled, and an OU
        # for the EU workloads (in AWS they exist before this project).
        org = moto.client("organizations", "us-east-1")
        org.create_organization(FeatureSet="ALL")
        root = org.list_roots()["Roots"][0]["Id"]
        org.enable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
        moto.org_root = root
        moto.eu_ou = org.create_organizational_unit(ParentId=root, Name="eu-workloads")["OrganizationalUnit"][
            "Id"
        ]

    def _init(self, root: str) -> bool:
        result = self.workspace.init(root)
        if result.returncode != 0:
            self.inits[root] = result.output
        return result.returncode == 0

    def _start_apply(self) -> None:
        if not self._init(FLEET):
            return
        self.workspace.write_vars(
            FLEET,
            {
                "endpoint": self.moto.url,
                "registry_file": str(self.workspace.registry),
                "scp_targets": {"EU": [self.moto.eu_ou]},
            },
        )
        # Straight to apply: its own plan is the only one needed (the plans of
        # the production roots are checked by the side plans).
        self.apply = self.workspace.start(
            FLEET,
            ["apply", "-auto-approve", "-input=false", "-parallelism=20"],
            name="fleet-apply",
            timeout=900,
            nice=True,
        )

    def _start_side_plans(self) -> None:
        workspace, moto = self.workspace, self.moto
        registry_text = workspace.registry.read_text()
        bad_registry = workspace.root / "registry-cross-zone.yaml"
        bad_registry.write_text(registry_text.replace("standby: eu-central-1", "standby: us-east-1", 1))
        endpoints = {
            code: {
                "alb_dns_name": f"saas-{code}-123.{code}.elb.amazonaws.com",
                "alb_zone_id": "Z32O12XQLNTSW2",
            }
            for code in load_registry(workspace.registry).codes
        }
        cases: dict[str, tuple[str, dict[str, Any]]] = {
            "eu-west-1": (REGION_ROOT, region_vars(moto, "eu-west-1")),
            "ap-south-1": (REGION_ROOT, region_vars(moto, "ap-south-1")),
            "global": (GLOBAL_ROOT, {"aws_endpoints": moto.endpoints(), "region_endpoints": endpoints}),
            "bad-registry": (REGION_ROOT, region_vars(moto, "eu-west-1", registry_file=str(bad_registry))),
            "cross-zone-module": (CROSS_ZONE_ROOT, {"endpoint": moto.url}),
        }
        ready = {root: self._init(root) for root in (REGION_ROOT, GLOBAL_ROOT, CROSS_ZONE_ROOT)}
        for name, (root, variables) in cases.items():
            if not ready[root]:
                continue
            workspace.write_vars(root, variables, name=f"{name}.tfvars.json")
            self.side_plans[name] = SidePlan(
                root,
                workspace.start(
                    root,
                    [
                        "plan",
                        "-input=false",
                        "-lock=false",
                        f"-var-file={name}.tfvars.json",
                        f"-out={name}.tfplan",
                    ],
                    name=f"plan-{name}",
                    timeout=900,
                    nice=True,
                ),
            )
