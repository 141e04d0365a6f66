"""Running Terraform and moto_server for the Terraform tests.

Every Terraform command runs under ``timeout --foreground`` in a fresh copy of
the configuration in a temporary directory, with local state: an interrupted
run can leave a lock file or state behind only in a directory that no later
run uses. moto_server runs on a free loopback port and is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regions.devstack.processes import ManagedProcess, free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = shutil.which("terraform") or "/usr/local/bin/terraform"
PLUGIN_DIR = Path(os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins"))

# Services the stacks call; every one is pointed at moto.
MOTO_SERVICES = (
    "acm",
    "applicationautoscaling",
    "cloudwatch",
    "ec2",
    "ecs",
    "elasticache",
    "elbv2",
    "iam",
    "kms",
    "logs",
    "organizations",
    "rds",
    "route53",
    "s3",
    "secretsmanager",
    "sts",
    "wafv2",
)

LOCAL_BACKEND = 'terraform {\n  backend "local" {}\n}\n'


def missing_tools() -> list[str]:
    """What the Terraform tests need from the machine and do not find."""
    missing = []
    if not Path(TERRAFORM).exists():
        missing.append("terraform (1.11+) on PATH")
    if not any(PLUGIN_DIR.glob("registry.terraform.io/hashicorp/aws/*/*/terraform-provider-aws_*")):
        missing.append(f"the AWS provider under {PLUGIN_DIR}")
    return missing


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return f"$ terraform {' '.join(self.args)}\n{self.stdout[-6000:]}\n{self.stderr[-6000:]}"


class Workspace:
    """A private copy of the configuration: terraform/, the registry and the test roots."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(
            REPO / "terraform",
            root / "terraform",
            ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl", "*.tfplan"),
        )
        (root / "regions").mkdir()
        shutil.copy2(REPO / "regions" / "registry.yaml", root / "regions" / "registry.yaml")
        shutil.copytree(REPO / "tests" / "terraform" / "fixtures", root / "tests" / "terraform" / "fixtures")
        for env in ("region", "global"):
            (root / "terraform" / "envs" / env / "backend_override.tf").write_text(LOCAL_BACKEND)
        self.cli_config = root / "terraformrc"
        self.cli_config.write_text("# empty: no user configuration, no plugin downloads\n")
        self.registry = root / "regions" / "registry.yaml"

    def path(self, relative: str) -> Path:
        return self.root / relative

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "AWS_"))}
        env.update(
            TF_CLI_CONFIG_FILE=str(self.cli_config),
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            CHECKPOINT_DISABLE="1",
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_EC2_METADATA_DISABLED="true",
        )
        return env

    def argv(self, args: list[str], timeout: float) -> list[str]:
        # -k: SIGKILL if terraform ignores SIGTERM for 15 s after the timeout.
        return ["timeout", "--foreground", "-k", "15", str(int(timeout)), TERRAFORM, *args]

    def run(self, directory: str, args: list[str], *, timeout: float = 120) -> Result:
        proc = subprocess.run(
            self.argv([f"-chdir={self.path(directory)}", *args, "-no-color"], timeout),
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout + 30,
            check=False,
        )
        return Result(args, proc.returncode, proc.stdout, proc.stderr)

    def init(self, directory: str) -> Result:
        return self.run(directory, ["init", "-input=false", f"-plugin-dir={PLUGIN_DIR}"], timeout=120)

    def start(
        self, directory: str, args: list[str], *, name: str, timeout: float, nice: bool = False
    ) -> ManagedProcess:
        """Start a long Terraform command in the background (stopped by PID if abandoned).

        ``nice`` lowers its CPU priority, so side work yields to the apply.
        """
        argv = self.argv([f"-chdir={self.path(directory)}", *args, "-no-color"], timeout)
        process = ManagedProcess(
            name=name,
            argv=["nice", "-n", "10", *argv] if nice else argv,
            log_path=self.root / f"{name}.log",
            env=self.env(),
        )
        process.start()
        return process

    def show_json(self, directory: str, target: str | None = None) -> dict[str, Any]:
        result = self.run(directory, ["show", "-json", *([target] if target else [])], timeout=120)
        if result.returncode != 0:
            raise RuntimeError(result.output)
        data: dict[str, Any] = json.loads(result.stdout)
        return data

    def write_vars(self, directory: str, values: dict[str, Any], name: str = "test.auto.tfvars.json") -> None:
        (self.path(directory) / name).write_text(json.dumps(values, indent=2))


class MotoServer:
    """moto_server (with tests/terraform/moto_server.py's fixes) on a free loopback port."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The organization the test creates (root id, an OU id).
        self.org_root = ""
        self.eu_ou = ""
        env = dict(os.environ)
        env.update(
            MOTO_IAM_LOAD_MANAGED_POLICIES="true",
            MOTO_ACM_VALIDATION_WAIT="0",
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
        )
        self.process = ManagedProcess(
            name="moto",
            argv=[
                sys.executable,
                "-m",
                "tests.terraform.moto_server",
                "-H",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            log_path=log_dir / "moto.log",
            env=env,
            cwd=REPO,
        )

    def start(self) -> None:
        self.process.start()

        def ready() -> bool:
            if not self.process.running():
                raise RuntimeError(f"moto_server exited:\n{self.process.tail()}")
            with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2) as response:
                return bool(response.status == 200)

        wait_until(ready, timeout=60, interval=0.2, what="moto_server")

    def stop(self) -> None:
        self.process.stop()

    def endpoints(self) -> dict[str, str]:
        return {service: self.url for service in MOTO_SERVICES}

    def client(self, service: str, region: str) -> Any:
        import boto3  # type: ignore[import-untyped]

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
