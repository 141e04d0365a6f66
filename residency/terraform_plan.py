"""Residency checks on Terraform plans and states (``terraform show -json``).

The Terraform tests and the residency audit both call these functions, so the
rules exist once. They read only the JSON that ``terraform show -json`` prints
for a saved plan or for a state, plus the region registry:

- :func:`check_region_plan` — one region's stack: every AWS resource sits in an
  allowed cloud region of the region's zone, the stack includes its own cloud
  region, and no value anywhere (ARNs, replica sources, snapshot copies,
  availability zones, ...) names a cloud region outside the zone.
- :func:`check_global_plan` — the global stack: health checks probe
  ``/health/ready``, latency and failover record sets stay inside one zone,
  and a region-deny SCP (``aws:RequestedRegion``) covers every registry region.

Where a resource lives: Terraform's JSON does not include a provider's region,
so every module that creates AWS resources reads ``data "aws_region"`` and a
resource is placed in the region of its nearest enclosing module that does.
A module without one is reported (``terraform.region_unknown``), never assumed.

This module imports nothing from Django.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regions.registry import Registry

# A cloud region name, optionally followed by an availability-zone letter:
# eu-west-1, eu-west-1a, us-gov-west-1. The look-arounds keep it from matching
# inside a longer token such as "eu-west-12".
CLOUD_REGION_RE = re.compile(
    r"(?<![a-z0-9])((?:us|eu|ap|sa|ca|me|af|il|mx|cn)-(?:gov-|iso[a-z]?-)?"
    r"(?:north|south|east|west|central|northeast|northwest|southeast|southwest)-[0-9])"
    r"(?=[a-z]?(?![a-z0-9]))"
)

HEALTH_PATH = "/health/ready"

UNKNOWN_SOURCE = "(known after apply)"
"""Source of a copy whose source ARN a plan cannot show; check the state after apply."""

# Resources that copy or replicate data from one place to another. Their
# destination is where the resource lives; their source is named in their
# arguments. Both must be in the zone, which the general rules already check;
# the audit lists them as evidence.
COPY_TYPES = frozenset(
    {
        "aws_db_snapshot_copy",
        "aws_db_cluster_snapshot",
        "aws_db_instance_automated_backups_replication",
        "aws_ebs_snapshot_copy",
        "aws_ami_copy",
        "aws_s3_bucket_replication_configuration",
        "aws_kms_replica_key",
        "aws_rds_global_cluster",
        "aws_elasticache_global_replication_group",
        "aws_backup_plan",
        "aws_dlm_lifecycle_policy",
        "aws_dynamodb_table_replica",
        "aws_secretsmanager_secret",
    }
)


@dataclass(frozen=True)
class Finding:
    """One residency problem in a plan. ``rule`` is a stable id."""

    rule: str
    address: str
    message: str


@dataclass(frozen=True)
class Copy:
    """A replica or copy of data: where it is and where its source is."""

    address: str
    kind: str
    destination: str
    sources: tuple[str, ...]


@dataclass
class Report:
    """What a check found, and what it looked at (for the audit's evidence)."""

    findings: list[Finding] = field(default_factory=list)
    resources: dict[str, str] = field(default_factory=dict)
    """Resource address => cloud region it is placed in."""
    copies: list[Copy] = field(default_factory=list)
    regions_referenced: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class PlanResource:
    address: str
    module: str
    mode: str
    type: str
    values: Mapping[str, Any]
    unknown: frozenset[str] = frozenset()
    """Top-level arguments whose value is known only after apply (plans only)."""


def load_json(path: Path | str) -> dict[str, Any]:
    """Read the output of ``terraform show -json`` (plan or state)."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not Terraform JSON output")
    return data


def _walk_module(module: Mapping[str, Any], unknown: Mapping[str, frozenset[str]]) -> Iterator[PlanResource]:
    module_address = str(module.get("address", ""))
    for resource in module.get("resources", []):
        address = str(resource["address"])
        yield PlanResource(
            address=address,
            module=module_address,
            mode=str(resource.get("mode", "managed")),
            type=str(resource["type"]),
            values=resource.get("values") or {},
            unknown=unknown.get(address, frozenset()),
        )
    for child in module.get("child_modules", []):
        yield from _walk_module(child, unknown)


def _unknown_arguments(doc: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    found: dict[str, frozenset[str]] = {}
    for change in doc.get("resource_changes", []):
        after_unknown = (change.get("change") or {}).get("after_unknown") or {}
        if isinstance(after_unknown, Mapping):
            found[str(change["address"])] = frozenset(k for k, v in after_unknown.items() if v is True)
    return found


def iter_resources(doc: Mapping[str, Any]) -> Iterator[PlanResource]:
    """Every resource of a plan (planned values + data sources read) or a state."""
    seen: set[str] = set()
    unknown = _unknown_arguments(doc)
    roots = []
    if "planned_values" in doc:
        roots.append(doc["planned_values"].get("root_module", {}))
        roots.append(doc.get("prior_state", {}).get("values", {}).get("root_module", {}))
    else:
        roots.append(doc.get("values", {}).get("root_module", {}))
    for root in roots:
        for resource in _walk_module(root, unknown):
            if resource.address not in seen:
                seen.add(resource.address)
                yield resource


def _is_aws(resource: PlanResource) -> bool:
    return resource.type.startswith("aws_")


def module_regions(doc: Mapping[str, Any]) -> dict[str, str]:
    """Module address ('' for the root) => region of its ``data.aws_region``."""
    found: dict[str, str] = {}
    for resource in iter_resources(doc):
        if resource.mode == "data" and resource.type == "aws_region":
            name = resource.values.get("name") or resource.values.get("region")
            if isinstance(name, str) and name:
                found[resource.module] = name
    return found


def _enclosing_region(module: str, regions: Mapping[str, str]) -> str | None:
    """Region of ``module`` or of its nearest ancestor that reads one."""
    path = module
    while True:
        if path in regions:
            return regions[path]
        if not path:
            return None
        # "module.a.module.b[0]" -> "module.a"
        cut = path.rfind(".module.")
        path = path[:cut] if cut >= 0 else ""


def regions_in(value: Any) -> set[str]:
    """Every cloud region named anywhere in a JSON value."""
    found: set[str] = set()
    if isinstance(value, str):
        found.update(CLOUD_REGION_RE.findall(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            found |= regions_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= regions_in(item)
    return found


def _copy_sources(resource: PlanResource) -> tuple[str, ...] | None:
    values = resource.values
    if resource.type == "aws_db_instance":
        source = values.get("replicate_source_db")
        if not source:
            return (UNKNOWN_SOURCE,) if "replicate_source_db" in resource.unknown else None
        return tuple(sorted(regions_in(source))) or ("(same region)",)
    if resource.type == "aws_secretsmanager_secret" and not values.get("replica"):
        return None
    if resource.type in COPY_TYPES:
        return tuple(sorted(regions_in(values)))
    return None


def _in_module(resource: PlanResource, module: str | None) -> bool:
    if not module:
        return True
    return resource.module == module or resource.module.startswith(f"{module}.")


def check_region_plan(
    doc: Mapping[str, Any], *, registry: Registry, region_code: str, module: str | None = None
) -> Report:
    """Check that one region's plan (or state) keeps everything in its zone.

    ``module`` limits the check to one module call (e.g. ``module.region``) of a
    root that also holds other stacks.
    """
    region = registry.region(region_code)
    allowed = {r.cloud_region for r in registry.regions_in_zone(region.zone)}
    zone = region.zone
    report = Report()
    regions = module_regions(doc)

    for resource in iter_resources(doc):
        if not _is_aws(resource) or not _in_module(resource, module):
            continue
        named = regions_in(resource.values)
        report.regions_referenced |= named
        for other in sorted(named - allowed):
            report.findings.append(
                Finding(
                    "terraform.reference_outside_zone",
                    resource.address,
                    f"{resource.address} names {other}, outside zone {zone} ({', '.join(sorted(allowed))}).",
                )
            )
        if resource.mode != "managed":
            continue
        placed = _enclosing_region(resource.module, regions)
        if placed is None:
            report.findings.append(
                Finding(
                    "terraform.region_unknown",
                    resource.address,
                    f"{resource.address}: its module reads no data.aws_region, so its region is unknown.",
                )
            )
            continue
        report.resources[resource.address] = placed
        if placed not in allowed:
            report.findings.append(
                Finding(
                    "terraform.resource_outside_zone",
                    resource.address,
                    f"{resource.address} is placed in {placed}, "
                    f"outside zone {zone} ({', '.join(sorted(allowed))}).",
                )
            )
        sources = _copy_sources(resource)
        if sources is not None:
            report.copies.append(Copy(resource.address, resource.type, placed, sources))

    if region.cloud_region not in report.resources.values():
        report.findings.append(
            Finding(
                "terraform.home_region_missing",
                "",
                f"No resource is placed in {region.cloud_region}, "
                f"the registry's cloud region for {region_code}.",
            )
        )
    return report


def _record_blocks(values: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    blocks = values.get(name) or []
    return [b for b in blocks if isinstance(b, Mapping)]


def _zone_of_cloud_region(registry: Registry) -> dict[str, str]:
    return {r.cloud_region: r.zone for r in registry.regions.values()}


def _policy_statements(content: Any) -> list[Mapping[str, Any]]:
    try:
        policy = json.loads(content) if isinstance(content, str) else {}
    except ValueError:
        return []
    statements = policy.get("Statement", []) if isinstance(policy, Mapping) else []
    if isinstance(statements, Mapping):
        statements = [statements]
    return [s for s in statements if isinstance(s, Mapping)]


def region_deny_regions(content: Any) -> set[str] | None:
    """Allowed regions of a region-deny SCP, or None if ``content`` is not one."""
    for statement in _policy_statements(content):
        if statement.get("Effect") != "Deny":
            continue
        condition = statement.get("Condition", {})
        for operator in ("StringNotEquals", "StringNotEqualsIgnoreCase"):
            value = condition.get(operator, {}).get("aws:RequestedRegion")
            if value is not None:
                return {value} if isinstance(value, str) else set(value)
    return None


def check_global_plan(doc: Mapping[str, Any], *, registry: Registry) -> Report:
    """Check the global stack: health checks, in-zone routing, region-deny SCP."""
    report = Report()
    zone_of = _zone_of_cloud_region(registry)
    record_regions: dict[str, dict[str, set[str]]] = {}
    fleet_regions = set(zone_of)
    guardrail_scopes: list[set[str]] = []

    for resource in iter_resources(doc):
        values = resource.values
        if resource.mode != "managed":
            continue
        if resource.type == "aws_route53_health_check":
            path = values.get("resource_path")
            if path != HEALTH_PATH:
                report.findings.append(
                    Finding(
                        "terraform.health_check_path",
                        resource.address,
                        f"{resource.address} probes {path!r}, not {HEALTH_PATH}.",
                    )
                )
        elif resource.type == "aws_route53_record":
            name = str(values.get("name") or resource.address)
            regions: set[str] = set()
            for policy in _record_blocks(values, "latency_routing_policy"):
                if isinstance(policy.get("region"), str):
                    regions.add(policy["region"])
            if _record_blocks(values, "latency_routing_policy") or _record_blocks(
                values, "failover_routing_policy"
            ):
                for alias in _record_blocks(values, "alias"):
                    regions |= regions_in(alias.get("name"))
                record_regions.setdefault(name, {}).setdefault(resource.address, set()).update(regions)
        elif resource.type == "aws_organizations_policy":
            if values.get("type") not in (None, "SERVICE_CONTROL_POLICY"):
                continue
            allowed = region_deny_regions(values.get("content"))
            if allowed is not None:
                guardrail_scopes.append(allowed)

    for name, members in record_regions.items():
        zones = {zone_of.get(r, f"unknown ({r})") for regions in members.values() for r in regions}
        if len(zones) > 1:
            report.findings.append(
                Finding(
                    "terraform.routing_crosses_zones",
                    ", ".join(sorted(members)),
                    f"Record set {name} routes across zones {', '.join(sorted(zones))}.",
                )
            )
        report.regions_referenced |= {r for regions in members.values() for r in regions}

    if not guardrail_scopes:
        report.findings.append(
            Finding(
                "terraform.no_region_guardrail",
                "",
                "No service control policy denies aws:RequestedRegion outside the allowed regions.",
            )
        )
    elif not any(scope == fleet_regions for scope in guardrail_scopes):
        report.findings.append(
            Finding(
                "terraform.region_guardrail_mismatch",
                "",
                "No region-deny SCP allows exactly the registry's regions "
                f"({', '.join(sorted(fleet_regions))}).",
            )
        )
    for scope in guardrail_scopes:
        zones = {zone_of.get(r, f"unknown ({r})") for r in scope}
        if scope != fleet_regions and len(zones) != 1:
            report.findings.append(
                Finding(
                    "terraform.region_guardrail_mismatch",
                    "",
                    f"A zone SCP allows regions of several zones: {', '.join(sorted(scope))}.",
                )
            )
    return report
