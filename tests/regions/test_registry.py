"""The registry: loading, whole-file validation and the boot checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from regions.registry import (
    DEFAULT_REGISTRY_PATH,
    RegistryError,
    UnknownRegionError,
    load_registry,
    parse_registry,
)


def registry_text() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(DEFAULT_REGISTRY_PATH.read_text())
    return raw


def problems_of(raw: object) -> list[tuple[str, str]]:
    with pytest.raises(RegistryError) as caught:
        parse_registry(yaml.safe_dump(raw), path=Path("test.yaml"))
    return [(p.check_id, p.message) for p in caught.value.problems]


def test_shipped_registry_is_valid_and_lists_the_required_regions():
    registry = load_registry(DEFAULT_REGISTRY_PATH)
    assert {"eu-west-1", "eu-central-1", "us-east-1", "ap-south-1"} <= set(registry.codes)
    assert registry.region("eu-west-1").zone == "EU"
    assert registry.region("eu-central-1").zone == "EU"
    assert registry.region("us-east-1").zone == "US"
    assert registry.region("ap-south-1").zone == "APAC"
    assert [r.code for r in registry.regions_in_zone("EU")] == ["eu-west-1", "eu-central-1"]
    assert registry.is_allowed(region="eu-central-1", zone="EU")
    assert not registry.is_allowed(region="us-east-1", zone="EU")
    assert len(registry.digest) == 64


def test_regions_are_frozen():
    region = load_registry(DEFAULT_REGISTRY_PATH).region("eu-west-1")
    with pytest.raises(AttributeError):
        region.zone = "US"  # type: ignore[misc]


def test_duplicate_code_is_rejected():
    raw = registry_text()
    raw["regions"].append(
        dict(raw["regions"][0], public_url="https://x.example", internal_url="https://y.example")
    )
    found = problems_of(raw)
    assert ("regions.E003", "duplicate region code 'eu-west-1'.") in found


def test_unknown_zone_is_rejected():
    raw = registry_text()
    raw["regions"][2]["zone"] = "MARS"
    found = problems_of(raw)
    assert any(cid == "regions.E004" and "'us-east-1'" in msg and "'MARS'" in msg for cid, msg in found)


def test_standby_outside_zone_is_rejected():
    raw = registry_text()
    raw["regions"][0]["standby"] = "us-east-1"
    found = problems_of(raw)
    assert any(
        cid == "regions.E007" and "outside its zone" in msg and "'eu-west-1'" in msg for cid, msg in found
    )


def test_unknown_standby_and_self_standby_are_rejected():
    raw = registry_text()
    raw["regions"][0]["standby"] = "eu-north-9"
    raw["regions"][1]["standby"] = "eu-central-1"
    found = problems_of(raw)
    assert any(cid == "regions.E006" and "'eu-north-9'" in msg for cid, msg in found)
    assert any(cid == "regions.E007" and "its own standby" in msg for cid, msg in found)


@pytest.mark.parametrize(
    "url",
    [
        "eu-west-1.example.com",  # no scheme
        "ftp://eu.example.com",  # wrong scheme
        "https://",  # no host
        "https://eu.example.com/api",  # path
        "https://eu.example.com?next=x",  # query
        "https://user:pw@eu.example.com",  # credentials
        "https://*.example.com",  # wildcard
        "https://eu.example.com:99999",  # bad port
    ],
)
def test_malformed_url_is_rejected(url: str):
    raw = registry_text()
    raw["regions"][0]["public_url"] = url
    found = problems_of(raw)
    assert any(cid == "regions.E005" and "malformed URL" in msg and "public_url" in msg for cid, msg in found)


def test_every_problem_is_reported_at_once():
    raw = registry_text()
    raw["regions"][0]["standby"] = "us-east-1"
    raw["regions"][2]["zone"] = "MARS"
    raw["regions"][3]["internal_url"] = "not a url"
    raw["regions"].append(dict(raw["regions"][1]))
    ids = {cid for cid, _ in problems_of(raw)}
    assert {"regions.E003", "regions.E004", "regions.E005", "regions.E007"} <= ids


def test_error_message_lists_every_problem():
    raw = registry_text()
    raw["regions"][2]["zone"] = "MARS"
    raw["regions"][3]["public_url"] = "nope"
    with pytest.raises(RegistryError) as caught:
        parse_registry(yaml.safe_dump(raw), path=Path("bad.yaml"))
    text = str(caught.value)
    assert "bad.yaml" in text and "[regions.E004]" in text and "[regions.E005]" in text


def test_shared_public_origin_is_rejected():
    raw = registry_text()
    raw["regions"][1]["public_url"] = raw["regions"][0]["public_url"]
    found = problems_of(raw)
    assert any(cid == "regions.E011" and "public origin" in msg for cid, msg in found)


def test_missing_fields_unknown_fields_and_bad_codes_are_rejected():
    raw = registry_text()
    del raw["regions"][0]["cloud_region"]
    raw["regions"][1]["colour"] = "blue"
    raw["regions"][2]["code"] = "US_EAST"
    found = problems_of(raw)
    assert any(cid == "regions.E002" and "cloud_region" in msg for cid, msg in found)
    assert any(cid == "regions.E002" and "colour" in msg for cid, msg in found)
    assert any(cid == "regions.E010" and "US_EAST" in msg for cid, msg in found)


def test_unreadable_and_unparseable_files_are_rejected(tmp_path: Path):
    with pytest.raises(RegistryError) as missing:
        load_registry(tmp_path / "nope.yaml")
    assert missing.value.problems[0].check_id == "regions.E001"
    broken = tmp_path / "broken.yaml"
    broken.write_text("regions: [\n")
    with pytest.raises(RegistryError) as unparsable:
        load_registry(broken)
    assert unparsable.value.problems[0].check_id == "regions.E001"


def test_unknown_region_lists_valid_codes():
    registry = load_registry(DEFAULT_REGISTRY_PATH)
    with pytest.raises(UnknownRegionError) as caught:
        registry.region("mars-north-1")
    assert "eu-west-1, eu-central-1, us-east-1, ap-south-1" in str(caught.value)


def test_public_link_only_builds_paths_on_the_region_origin():
    region = load_registry(DEFAULT_REGISTRY_PATH).region("us-east-1")
    assert region.public_link("/api/v1/x", "a=1") == "https://us-east-1.api.saas.example.com/api/v1/x?a=1"
    for bad in ("//evil.example.com/x", "https://evil.example.com", "relative"):
        with pytest.raises(ValueError):
            region.public_link(bad)


def test_local_registry_for_make_run_is_valid_and_matches_the_shipped_regions():
    local = load_registry(DEFAULT_REGISTRY_PATH.with_name("registry.local.yaml"))
    shipped = load_registry(DEFAULT_REGISTRY_PATH)
    assert local.codes == shipped.codes
    assert {c: r.zone for c, r in local.regions.items()} == {c: r.zone for c, r in shipped.regions.items()}
    assert all(r.public_url.startswith("http://127.0.0.1:") for r in local.regions.values())
