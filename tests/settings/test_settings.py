"""Settings come from the environment; production is strict; embedded defaults just work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from regions.devstack.processes import ManagedProcess, free_port, wait_until
from tests.harness.stack import REPO_ROOT

PROD_SECRET = "prod-like-secret-" + "k3y!" * 12
VALID_CODES = "eu-west-1, eu-central-1, us-east-1, ap-south-1"


def clean_env(**values: str) -> dict[str, str]:
    """Nothing from the developer's shell except PATH: what a fresh machine has."""
    return {"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1", **values}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def prod_env(**values: str) -> dict[str, str]:
    return clean_env(
        **{
            "DJANGO_SETTINGS_MODULE": "settings.production",
            "SECRET_KEY": PROD_SECRET,
            "DIRECTORY_SECRET": "prod-like-directory-secret",
            "AUDIT_SIGNING_KEYS": "k1:prod-like-audit-key",
            "REPLICATION_SIGNING_KEYS": "3f9a1c7e5b2d8f4a6c0e9b7d5f3a1c8e2b4d6f8a0c2e4b6d",
            **values,
        }
    )


def test_production_settings_pass_check_deploy_with_no_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=prod_env(REGION="eu-west-1"))
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_debug():
    result = manage("check", env=prod_env(REGION="eu-west-1", DEBUG="true"))
    assert result.returncode != 0
    assert "DEBUG must be off in production" in result.stderr


def test_production_refuses_a_weak_secret_key():
    result = manage(
        "check",
        env=clean_env(DJANGO_SETTINGS_MODULE="settings.production", SECRET_KEY="short", REGION="eu-west-1"),
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50" in result.stderr


def test_production_without_region_stops_boot_listing_valid_codes():
    result = manage("check", env=prod_env())
    assert result.returncode != 0
    assert "regions.E020" in result.stderr
    assert VALID_CODES in result.stderr


@pytest.mark.parametrize("module", ["settings.base", "settings.production"])
def test_unknown_region_stops_boot_listing_valid_codes(module: str):
    result = manage("check", env=prod_env(DJANGO_SETTINGS_MODULE=module, REGION="mars-north-1"))
    assert result.returncode != 0
    assert "regions.E021" in result.stderr
    assert "'mars-north-1'" in result.stderr and VALID_CODES in result.stderr


def test_gunicorn_entry_point_refuses_to_boot_with_unknown_region():
    code = "import saas.wsgi"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=prod_env(REGION="mars-north-1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Boot checks failed" in result.stderr and VALID_CODES in result.stderr


def test_invalid_registry_file_stops_boot_with_every_problem(tmp_path: Path):
    bad = tmp_path / "registry.yaml"
    text = (REPO_ROOT / "regions" / "registry.yaml").read_text()
    bad.write_text(
        text.replace("zone: US", "zone: MARS").replace("standby: eu-central-1", "standby: us-east-1")
    )
    result = manage("check", env=clean_env(REGION_REGISTRY=str(bad)))
    assert result.returncode != 0
    assert "regions.E004" in result.stderr and "regions.E007" in result.stderr


def test_embedded_defaults_migrate_and_serve_a_request(tmp_path: Path):
    env = clean_env(SQLITE_PATH=str(tmp_path / "db.sqlite3"))
    migrated = manage("migrate", "--noinput", env=env)
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    server = ManagedProcess(
        name="runserver",
        argv=[sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        log_path=tmp_path / "runserver.log",
        env=env,
        cwd=REPO_ROOT,
    )
    server.start()
    try:
        url = f"http://127.0.0.1:{port}/health/live"

        def answers() -> bool:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)

        wait_until(answers, timeout=30, what="runserver to answer")
        with urllib.request.urlopen(url, timeout=2) as response:
            assert json.loads(response.read()) == {"status": "ok", "region": "eu-west-1"}
    finally:
        server.stop()
    assert (tmp_path / "db.sqlite3").stat().st_size > 0


def test_env_example_documents_every_variable_the_settings_read():
    import re

    read = set()
    for path in (REPO_ROOT / "settings").glob("*.py"):
        read |= set(re.findall(r'env\.(?:str|optional|bool|int|float|list)\("([A-Z_]+)"', path.read_text()))
    documented = set(re.findall(r"^([A-Z_]+)=", (REPO_ROOT / ".env.example").read_text(), re.MULTILINE))
    assert read - documented == set()
