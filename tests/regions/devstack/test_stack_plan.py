"""The local stack's plan: where the Celery broker lives (no processes started)."""

from __future__ import annotations

from pathlib import Path

from regions.devstack.stack import Stack, StackPlan

CODES = ("eu-west-1", "us-east-1")


def plan(tmp_path: Path, broker_ports: dict[str, int] | None = None) -> StackPlan:
    ports = {"eu-west-1": (20001, 20002, 20003), "us-east-1": (20011, 20012, 20013)}
    return StackPlan.make(root=tmp_path, codes=CODES, embedded=False, ports=ports, broker_ports=broker_ports)


def test_by_default_the_broker_is_db_1_of_the_regions_redis(tmp_path):
    stack = Stack(plan(tmp_path))
    env = stack.region_env(stack.plan.regions[0])
    assert env["REDIS_URL"] == "redis://127.0.0.1:20003/0"
    assert env["CELERY_BROKER_URL"] == "redis://127.0.0.1:20003/1"


def test_broker_ports_give_a_region_a_broker_redis_of_its_own(tmp_path):
    stack = Stack(plan(tmp_path, broker_ports={"us-east-1": 20019}))
    eu, us = stack.plan.regions
    assert stack.region_env(eu)["CELERY_BROKER_URL"] == "redis://127.0.0.1:20003/1"
    assert stack.region_env(us)["CELERY_BROKER_URL"] == "redis://127.0.0.1:20019/0"
    assert stack.region_env(us)["REDIS_URL"] == "redis://127.0.0.1:20013/0"
