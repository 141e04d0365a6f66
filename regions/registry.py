"""The region registry: load, validate and query the list of regions and zones.

The registry file (``regions/registry.yaml`` by default, ``REGION_REGISTRY`` to
override) is read once per path into frozen dataclasses. Validation looks at
the whole file and reports every problem at once, each with the id of the
system check that reports it at boot (``regions.E001`` ...).

This module imports nothing from Django so that settings and Terraform tooling
can use it.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import yaml

DEFAULT_REGISTRY_PATH = Path(__file__).resolve().parent / "registry.yaml"

REGION_CODE_RE = re.compile(r"^[a-z]{2}-[a-z]+-[0-9]{1,2}$")
ZONE_CODE_RE = re.compile(r"^[A-Z]{2,8}$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")

REGION_FIELDS = {"code", "zone", "public_url", "internal_url", "cloud_region", "standby"}
REQUIRED_REGION_FIELDS = REGION_FIELDS - {"standby"}
ZONE_FIELDS = {"label", "color"}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a registry file."""

    check_id: str
    """The system check id that reports it, e.g. ``regions.E003``."""
    message: str


class RegistryError(Exception):
    """The registry file is invalid. ``problems`` lists every problem found."""

    def __init__(self, path: Path, problems: Iterable[Problem]) -> None:
        self.path = path
        self.problems = tuple(problems)
        lines = "\n".join(f"  - [{p.check_id}] {p.message}" for p in self.problems)
        super().__init__(f"Region registry {path} is invalid:\n{lines}")


class UnknownRegionError(LookupError):
    """A region code that the registry does not list."""

    def __init__(self, code: str, valid: Iterable[str]) -> None:
        self.code = code
        self.valid = tuple(valid)
        super().__init__(f"Unknown region {code!r}. Valid region codes: {', '.join(self.valid)}.")


@dataclass(frozen=True, slots=True)
class Zone:
    """A legal residency area. Data of a subject homed in a zone stays in its regions."""

    code: str
    """Short upper-case code, e.g. ``EU``."""
    label: str
    """Human-readable name, shown in the admin banner and audit reports."""
    color: str
    """Hex colour of the admin banner for regions in this zone."""


@dataclass(frozen=True, slots=True)
class Region:
    """A deployment cell: its own primary, replicas, Redis, workers and web processes."""

    code: str
    """Stable code, e.g. ``eu-west-1``. The value of ``REGION`` in its processes."""
    zone: str
    """Code of the residency zone the region belongs to."""
    public_url: str
    """Origin that customers call, e.g. ``https://eu-west-1.api.example.com``."""
    internal_url: str
    """Origin that peer regions call for signed inter-region requests."""
    cloud_region: str
    """Cloud provider region where Terraform places every resource of this region."""
    standby: str | None = None
    """Optional in-zone region that takes over when this one is down."""

    @property
    def public_host(self) -> str:
        return urlsplit(self.public_url).hostname or ""

    @property
    def public_netloc(self) -> str:
        return urlsplit(self.public_url).netloc

    @property
    def internal_netloc(self) -> str:
        return urlsplit(self.internal_url).netloc

    def public_link(self, path: str, query: str = "") -> str:
        """An absolute URL on this region's public origin. ``path`` must start with ``/``."""
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError("path must be an absolute path on the region host")
        return f"{self.public_url}{path}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class Registry:
    """Every zone and region, validated as a whole."""

    path: Path
    digest: str
    """SHA-256 of the file's bytes; audit reports record it."""
    zones: Mapping[str, Zone]
    regions: Mapping[str, Region]
    _by_zone: Mapping[str, tuple[Region, ...]] = field(repr=False)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(self.regions)

    def region(self, code: str) -> Region:
        try:
            return self.regions[code]
        except KeyError:
            raise UnknownRegionError(code, self.codes) from None

    def zone_of(self, code: str) -> Zone:
        return self.zones[self.region(code).zone]

    def regions_in_zone(self, zone: str) -> tuple[Region, ...]:
        """The allowed regions of a zone, in registry order."""
        return self._by_zone.get(zone, ())

    def is_allowed(self, *, region: str, zone: str) -> bool:
        """Whether data of a subject in ``zone`` may live in or be served by ``region``."""
        found = self.regions.get(region)
        return found is not None and found.zone == zone

    def peers(self, code: str) -> tuple[Region, ...]:
        """Every region other than ``code``."""
        return tuple(r for r in self.regions.values() if r.code != code)

    def by_public_netloc(self, netloc: str) -> Region | None:
        for region in self.regions.values():
            if region.public_netloc == netloc:
                return region
        return None


def _check_url(value: Any, *, where: str, problems: list[Problem]) -> None:
    if not isinstance(value, str) or not value:
        problems.append(Problem("regions.E005", f"{where} must be a non-empty URL string."))
        return
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        problems.append(Problem("regions.E005", f"{where} {value!r} is a malformed URL."))
        return
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        problems.append(
            Problem("regions.E005", f"{where} {value!r} is a malformed URL: it needs http(s)://host.")
        )
    elif parts.path not in {"", "/"} or parts.query or parts.fragment:
        problems.append(
            Problem(
                "regions.E005",
                f"{where} {value!r} is a malformed URL: give an origin with no path, query or fragment.",
            )
        )
    elif parts.username is not None or parts.password is not None:
        problems.append(
            Problem("regions.E005", f"{where} {value!r} is a malformed URL: credentials are not allowed.")
        )
    elif "*" in parts.netloc:
        problems.append(Problem("regions.E005", f"{where} {value!r} is a malformed URL: no wildcards."))


def _parse_zones(raw: Any, problems: list[Problem]) -> dict[str, Zone]:
    zones: dict[str, Zone] = {}
    if not isinstance(raw, dict) or not raw:
        problems.append(Problem("regions.E002", "`zones` must be a non-empty mapping of zone codes."))
        return zones
    for code, body in raw.items():
        where = f"zone {code!r}"
        if not isinstance(code, str) or not ZONE_CODE_RE.match(code):
            problems.append(Problem("regions.E002", f"{where}: zone codes are 2-8 upper-case letters."))
            continue
        if not isinstance(body, dict):
            problems.append(Problem("regions.E002", f"{where} must be a mapping with label and color."))
            continue
        unknown = set(body) - ZONE_FIELDS
        if unknown:
            problems.append(Problem("regions.E002", f"{where} has unknown fields: {sorted(unknown)}."))
        label, color = body.get("label"), body.get("color")
        if not isinstance(label, str) or not label:
            problems.append(Problem("regions.E002", f"{where} needs a label."))
        if not isinstance(color, str) or not COLOR_RE.match(color):
            problems.append(Problem("regions.E002", f"{where} needs a color like '#1d4ed8'."))
        zones[code] = Zone(code=code, label=str(label or code), color=str(color or "#444444"))
    return zones


def _parse_region(index: int, body: Any, problems: list[Problem]) -> Region | None:
    if not isinstance(body, dict):
        problems.append(Problem("regions.E002", f"regions[{index}] must be a mapping."))
        return None
    code = body.get("code")
    where = f"region {code!r}" if isinstance(code, str) and code else f"regions[{index}]"
    unknown = set(body) - REGION_FIELDS
    if unknown:
        problems.append(Problem("regions.E002", f"{where} has unknown fields: {sorted(unknown)}."))
    missing = sorted(f for f in REQUIRED_REGION_FIELDS if body.get(f) in (None, ""))
    if missing:
        problems.append(Problem("regions.E002", f"{where} is missing required fields: {missing}."))
    if not isinstance(code, str) or not REGION_CODE_RE.match(code):
        problems.append(
            Problem("regions.E010", f"{where}: region codes look like 'eu-west-1', got {code!r}.")
        )
    for name in ("public_url", "internal_url"):
        if name in body:
            _check_url(body[name], where=f"{where} {name}", problems=problems)
    for name in ("zone", "cloud_region", "standby"):
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            problems.append(Problem("regions.E002", f"{where} {name} must be a string."))
    if missing or not isinstance(code, str):
        return None
    standby = body.get("standby")
    return Region(
        code=code,
        zone=str(body["zone"]),
        public_url=str(body["public_url"]).rstrip("/"),
        internal_url=str(body["internal_url"]).rstrip("/"),
        cloud_region=str(body["cloud_region"]),
        standby=str(standby) if standby else None,
    )


def _check_whole(
    zones: Mapping[str, Zone], regions: list[Region], problems: list[Problem]
) -> dict[str, Region]:
    by_code: dict[str, Region] = {}
    for region in regions:
        if region.code in by_code:
            problems.append(Problem("regions.E003", f"duplicate region code {region.code!r}."))
            continue
        by_code[region.code] = region
    for region in by_code.values():
        if zones and region.zone not in zones:
            problems.append(
                Problem(
                    "regions.E004",
                    f"region {region.code!r} has unknown zone {region.zone!r}; "
                    f"known zones: {', '.join(zones)}.",
                )
            )
        if region.standby is None:
            continue
        standby = by_code.get(region.standby)
        if standby is None:
            problems.append(
                Problem(
                    "regions.E006",
                    f"region {region.code!r} names unknown standby region {region.standby!r}.",
                )
            )
        elif standby.code == region.code:
            problems.append(Problem("regions.E007", f"region {region.code!r} cannot be its own standby."))
        elif standby.zone != region.zone:
            problems.append(
                Problem(
                    "regions.E007",
                    f"standby {standby.code!r} of region {region.code!r} is outside its zone "
                    f"({standby.zone} is not {region.zone}).",
                )
            )
    for attr, label in (("public_netloc", "public"), ("internal_netloc", "internal")):
        seen: dict[str, str] = {}
        for region in by_code.values():
            netloc = getattr(region, attr)
            if netloc in seen:
                problems.append(
                    Problem(
                        "regions.E011",
                        f"regions {seen[netloc]!r} and {region.code!r} share the {label} origin {netloc!r}.",
                    )
                )
            else:
                seen[netloc] = region.code
    return by_code


def parse_registry(text: str | bytes, *, path: Path) -> Registry:
    """Parse and validate registry text. Raises ``RegistryError`` listing every problem."""
    problems: list[Problem] = []
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegistryError(path, [Problem("regions.E001", f"not valid YAML: {exc}")]) from None
    if not isinstance(raw, dict):
        raise RegistryError(path, [Problem("regions.E002", "the file must hold a mapping.")])
    unknown = set(raw) - {"version", "zones", "regions"}
    if unknown:
        problems.append(Problem("regions.E002", f"unknown top-level keys: {sorted(unknown)}."))
    if raw.get("version") != 1:
        problems.append(Problem("regions.E002", "`version` must be 1."))
    zones = _parse_zones(raw.get("zones"), problems)
    raw_regions = raw.get("regions")
    regions: list[Region] = []
    if not isinstance(raw_regions, list) or not raw_regions:
        problems.append(Problem("regions.E002", "`regions` must be a non-empty list."))
    else:
        for index, body in enumerate(raw_regions):
            region = _parse_region(index, body, problems)
            if region is not None:
                regions.append(region)
    by_code = _check_whole(zones, regions, problems)
    if problems:
        raise RegistryError(path, problems)
    by_zone = {z: tuple(r for r in by_code.values() if r.zone == z) for z in zones}
    digest = hashlib.sha256(text if isinstance(text, bytes) else text.encode()).hexdigest()
    return Registry(
        path=path,
        digest=digest,
        zones=MappingProxyType(zones),
        regions=MappingProxyType(by_code),
        _by_zone=MappingProxyType(by_zone),
    )


def load_registry(path: Path | str) -> Registry:
    """Read and validate a registry file (not cached)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RegistryError(
            path, [Problem("regions.E001", f"cannot read the registry file: {exc.strerror}.")]
        ) from None
    return parse_registry(data, path=path)


@functools.lru_cache(maxsize=8)
def cached_registry(path: str) -> Registry:
    """The registry at ``path``, loaded once per process."""
    return load_registry(path)
