"""Unit tests of the plan-JSON residency checks on small hand-written plans.

The Terraform tests run the same checks on real plans and states.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from regions.registry import load_registry
from residency.terraform_plan import (
    UNKNOWN_SOURCE,
    check_global_plan,
    check_region_plan,
    region_deny_regions,
    regions_in,
)


@pytest.fixture(scope="module")
def registry():
    return load_registry("regions/registry.yaml")


def resource(address: str, type_: str, values: dict[str, Any], mode: str = "managed") -> dict[str, Any]:
    return {
        "address": address,
        "mode": mode,
        "type": type_,
        "name": address.rsplit(".", 1)[-1],
        "values": values,
    }


def module(
    address: str, resources: list[dict[str, Any]], children: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    return {"address": address, "resources": resources, "child_modules": list(children)}


def plan(root: dict[str, Any], data_root: dict[str, Any] | None = None, changes=()) -> dict[str, Any]:
    return {
        "planned_values": {"root_module": root},
        "prior_state": {"values": {"root_module": data_root or {"resources": []}}},
        "resource_changes": list(changes),
    }


def region_data(module_address: str, name: str) -> dict[str, Any]:
    prefix = f"{module_address}." if module_address else ""
    return resource(f"{prefix}data.aws_region.current", "aws_region", {"name": name}, mode="data")


def eu_plan(standby_region: str = "eu-central-1", replica_source: str | None = None) -> dict[str, Any]:
    standby_values: dict[str, Any] = {"identifier": "saas-eu-west-1-standby"}
    if replica_source:
        standby_values["replicate_source_db"] = replica_source
    root = module(
        "",
        [],
        [
            module(
                "module.region",
                [
                    resource("module.region.aws_vpc.this", "aws_vpc", {"cidr_block": "10.0.0.0/16"}),
                    resource(
                        "module.region.aws_subnet.a",
                        "aws_subnet",
                        {"availability_zone": "eu-west-1a"},
                    ),
                ],
                [
                    module(
                        "module.region.module.standby[0]",
                        [
                            resource(
                                "module.region.module.standby[0].aws_db_instance.standby",
                                "aws_db_instance",
                                standby_values,
                            )
                        ],
                    )
                ],
            )
        ],
    )
    data = module(
        "",
        [],
        [
            module(
                "module.region",
                [region_data("module.region", "eu-west-1")],
                [
                    module(
                        "module.region.module.standby[0]",
                        [region_data("module.region.module.standby[0]", standby_region)],
                    )
                ],
            )
        ],
    )
    changes = []
    if not replica_source:
        changes.append(
            {
                "address": "module.region.module.standby[0].aws_db_instance.standby",
                "change": {"after_unknown": {"replicate_source_db": True}},
            }
        )
    return plan(root, data, changes)


def test_regions_in_finds_regions_and_zones_but_not_longer_tokens() -> None:
    value = {
        "a": "arn:aws:rds:eu-central-1:123:db:x",
        "b": ["eu-west-1a", "saas-us-east-1-primary"],
        "c": "eu-west-12 and xeu-west-1",
    }
    assert regions_in(value) == {"eu-central-1", "eu-west-1", "us-east-1"}


def test_in_zone_plan_passes_and_lists_the_copy(registry) -> None:
    report = check_region_plan(eu_plan(), registry=registry, region_code="eu-west-1")
    assert report.ok, report.findings
    assert report.resources["module.region.aws_vpc.this"] == "eu-west-1"
    assert report.resources["module.region.module.standby[0].aws_db_instance.standby"] == "eu-central-1"
    [copy] = report.copies
    assert (copy.destination, copy.sources) == ("eu-central-1", (UNKNOWN_SOURCE,))


def test_standby_outside_the_zone_is_reported(registry) -> None:
    report = check_region_plan(
        eu_plan(standby_region="us-east-1"), registry=registry, region_code="eu-west-1"
    )
    # Placed outside the zone, and its module's data.aws_region names that region.
    assert {(f.rule, f.address) for f in report.findings} == {
        ("terraform.resource_outside_zone", "module.region.module.standby[0].aws_db_instance.standby"),
        ("terraform.reference_outside_zone", "module.region.module.standby[0].data.aws_region.current"),
    }
    assert any("us-east-1, outside zone EU" in f.message for f in report.findings)


def test_replica_of_a_source_outside_the_zone_is_reported(registry) -> None:
    doc = eu_plan(replica_source="arn:aws:rds:ap-south-1:123:db:other")
    report = check_region_plan(doc, registry=registry, region_code="eu-west-1")
    assert {f.rule for f in report.findings} == {"terraform.reference_outside_zone"}
    assert report.copies[0].sources == ("ap-south-1",)


def test_module_without_region_data_is_not_assumed(registry) -> None:
    doc = plan(module("", [resource("aws_vpc.this", "aws_vpc", {})]))
    rules = {f.rule for f in check_region_plan(doc, registry=registry, region_code="eu-west-1").findings}
    assert rules == {"terraform.region_unknown", "terraform.home_region_missing"}


def test_module_filter_ignores_other_stacks(registry) -> None:
    doc = eu_plan()
    doc["planned_values"]["root_module"]["child_modules"].append(
        module(
            "module.global", [resource("module.global.aws_kms_key.k", "aws_kms_key", {"arn": "us-east-1"})]
        )
    )
    assert check_region_plan(doc, registry=registry, region_code="eu-west-1", module="module.region").ok
    assert not check_region_plan(doc, registry=registry, region_code="eu-west-1").ok


def scp(allowed: list[str]) -> str:
    return json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Deny",
                    "NotAction": ["iam:*"],
                    "Resource": "*",
                    "Condition": {"StringNotEquals": {"aws:RequestedRegion": allowed}},
                }
            ]
        }
    )


def global_plan(
    records: list[dict[str, Any]], policies: list[str], path: str = "/health/ready"
) -> dict[str, Any]:
    resources = [resource("aws_route53_health_check.eu", "aws_route53_health_check", {"resource_path": path})]
    resources += records
    resources += [
        resource(f"aws_organizations_policy.p{i}", "aws_organizations_policy", {"content": c, "type": None})
        for i, c in enumerate(policies)
    ]
    return plan(module("", resources))


def latency(name: str, region: str) -> dict[str, Any]:
    return resource(
        f'aws_route53_record.r["{region}"]',
        "aws_route53_record",
        {"name": name, "latency_routing_policy": [{"region": region}], "alias": [{"name": "x.example.com"}]},
    )


FLEET = ["eu-west-1", "eu-central-1", "us-east-1", "ap-south-1"]


def test_global_plan_in_zone_passes(registry) -> None:
    doc = global_plan([latency("eu.api", "eu-west-1"), latency("eu.api", "eu-central-1")], [scp(FLEET)])
    assert check_global_plan(doc, registry=registry).ok


def test_latency_set_across_zones_is_reported(registry) -> None:
    doc = global_plan([latency("eu.api", "eu-west-1"), latency("eu.api", "us-east-1")], [scp(FLEET)])
    assert [f.rule for f in check_global_plan(doc, registry=registry).findings] == [
        "terraform.routing_crosses_zones"
    ]


def test_missing_or_wrong_guardrail_and_health_path_are_reported(registry) -> None:
    assert {f.rule for f in check_global_plan(global_plan([], []), registry=registry).findings} == {
        "terraform.no_region_guardrail"
    }
    doc = global_plan([], [scp(["eu-west-1", "us-east-1"])], path="/health/live")
    assert {f.rule for f in check_global_plan(doc, registry=registry).findings} == {
        "terraform.health_check_path",
        "terraform.region_guardrail_mismatch",
    }


def test_region_deny_regions_reads_only_deny_statements() -> None:
    assert region_deny_regions(scp(["eu-west-1"])) == {"eu-west-1"}
    allow = json.dumps({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}})
    assert region_deny_regions(allow) is None
    assert region_deny_regions("not json") is None
