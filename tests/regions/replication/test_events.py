"""Payload allowlists: personal data cannot enter a replicated payload."""

from __future__ import annotations

import re

import pytest
from django.apps import apps

from regions.placement import DataClass, placement_of
from regions.replication.events import (
    DIRECTORY_ENTRY,
    EVENT_TYPES,
    PayloadRejected,
    directory_shard,
    payload_from,
    validate_payload,
)
from residency.models import DirectoryEntry

PII_NAME = re.compile(r"email|mail|name|phone|address|ip|password|birth|token|secret|text|body", re.I)
PII_VALUES = [
    "alice@example.com",
    "Alice Example",
    "203.0.113.7",
    "2001:db8::1",
    "alice.example",
    "+1 555 0100",
]


def _resident_fields() -> set[tuple[str, str]]:
    """(model label, field) of every resident model's own fields: what must never be replicated."""
    fields = set()
    for model in apps.get_models():
        placement = placement_of(model)
        if placement is not None and placement.data_class is DataClass.RESIDENT:
            fields |= {(model._meta.label, f.name) for f in model._meta.get_fields() if f.concrete}
    return fields


@pytest.mark.parametrize("event", EVENT_TYPES.values(), ids=lambda e: e.name)
def test_every_event_type_reads_only_allowlisted_fields_of_a_directory_model(event):
    model = event.model()
    placement = placement_of(model)
    assert placement is not None and placement.data_class is DataClass.DIRECTORY, "only directory data"
    own_fields = {f.name for f in model._meta.get_fields() if f.concrete}
    assert set(event.fields) <= own_fields
    assert not {(model._meta.label, name) for name in event.fields} & _resident_fields()
    named_like_pii = [name for name in event.fields if PII_NAME.search(name)]
    assert named_like_pii == [], f"{event.name} allowlists fields named like personal data"


@pytest.mark.parametrize("event", EVENT_TYPES.values(), ids=lambda e: e.name)
@pytest.mark.parametrize("value", PII_VALUES)
def test_no_allowlisted_string_field_accepts_personal_data(event, value):
    for name, valid in event.fields.items():
        assert not valid(value), f"{event.name}.{name} would carry {value!r}"


def _entry(**overrides):
    values = {
        "kind": "org",
        "key": "acme",
        "home_region": "eu-west-1",
        "version": 3,
        "origin_region": "eu-west-1",
    }
    return DirectoryEntry(**{**values, **overrides})


def test_payload_holds_exactly_the_allowlist_even_when_the_instance_carries_more():
    entry = _entry()
    entry.email = "alice@example.com"  # an attribute that is not allowlisted
    payload = payload_from(DIRECTORY_ENTRY, entry)
    assert payload == {
        "kind": "org",
        "key": "acme",
        "home_region": "eu-west-1",
        "version": 3,
        "origin_region": "eu-west-1",
    }
    assert "alice" not in repr(payload)


def test_an_email_shaped_key_cannot_become_a_payload():
    with pytest.raises(PayloadRejected) as caught:
        payload_from(DIRECTORY_ENTRY, _entry(kind="login", key="alice@example.com"))
    assert caught.value.code == "payload_invalid"


def test_receiver_refuses_fields_outside_the_allowlist():
    payload = payload_from(DIRECTORY_ENTRY, _entry())
    with pytest.raises(PayloadRejected) as caught:
        validate_payload(DIRECTORY_ENTRY, {**payload, "email": "alice@example.com"})
    assert caught.value.code == "payload_not_allowed"
    with pytest.raises(PayloadRejected):
        validate_payload(DIRECTORY_ENTRY, {k: v for k, v in payload.items() if k != "version"})
    with pytest.raises(PayloadRejected):
        validate_payload(DIRECTORY_ENTRY, {**payload, "version": True})


def test_payloads_are_built_only_from_their_source_model():
    from saas.models import Organization

    with pytest.raises(TypeError):
        payload_from(DIRECTORY_ENTRY, Organization(slug="acme", name="Acme Inc", home_region="eu-west-1"))


def test_directory_events_of_one_object_share_a_shard():
    a = directory_shard({"kind": "org", "key": "acme"})
    assert a == directory_shard({"kind": "org", "key": "acme"})
    assert re.fullmatch(r"directory:\d\d", a)
    assert len({directory_shard({"kind": "org", "key": f"org-{i}"}) for i in range(500)}) > 32
