"""Replicated event types and their payload allowlists.

A payload is built from an allowlist of fields per event type, each with a
validator, so nothing outside the list (emails, names, IPs, ...) can enter
one: the sender builds payloads only through ``payload_from``, and the
receiver refuses any payload whose keys differ from the list. Event types are
built only from ``directory``-class models (a system check and a test hold
that), which by contract hold no personal data in clear.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import models
from django.utils.module_loading import import_string

from regions.registry import REGION_CODE_RE

Validator = Callable[[Any], bool]

_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
"""Slugs, UUIDs and hex login keys fit; an email (``@``, ``.``), an IP (``.``, ``:``) or a
name with spaces does not."""


def region_code(value: Any) -> bool:
    return isinstance(value, str) and bool(REGION_CODE_RE.match(value))


def positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


def one_of(*choices: str) -> Validator:
    allowed = frozenset(choices)
    return lambda value: isinstance(value, str) and value in allowed


def directory_key(value: Any) -> bool:
    """A slug, a UUID or a 64-hex login key: never an email, a name with spaces or an IP."""
    return isinstance(value, str) and bool(_KEY_RE.match(value))


@dataclass(frozen=True)
class EventType:
    name: str
    source_model: str
    """``app_label.Model`` the payload is read from; must be a ``directory``-class model."""
    fields: Mapping[str, Validator]
    """The allowlist: payload field -> validator of its value."""
    object_key: Callable[[Mapping[str, Any]], str]
    """What the event describes; a newer event for the same object supersedes an older one."""
    shard_key: Callable[[Mapping[str, Any]], str]
    check: str
    """Dotted path of the receiver's semantic check: ``check(payload, origin_region=...)``, raises
    ``PayloadRejected`` (the event is refused, its shard stops)."""
    apply: str
    """Dotted path of the receiver's service: ``apply(payloads, origin_region=...) -> [changed, ...]``;
    it applies many events at once, in order."""

    def model(self) -> type[models.Model]:
        return apps.get_model(self.source_model)

    def check_function(self) -> Callable[..., None]:
        function: Callable[..., None] = import_string(self.check)
        return function

    def apply_function(self) -> Callable[..., list[bool]]:
        function: Callable[..., list[bool]] = import_string(self.apply)
        return function


class PayloadRejected(ValueError):
    """A payload outside its event type's allowlist, or with an invalid value."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        super().__init__(detail)


DIRECTORY_SHARDS = 64
"""Directory events hash into this many shards per peer (like partitions of a log)."""


def _directory_object(payload: Mapping[str, Any]) -> str:
    return f"{payload['kind']}:{payload['key']}"


def directory_shard(payload: Mapping[str, Any]) -> str:
    bucket = zlib.crc32(_directory_object(payload).encode()) % DIRECTORY_SHARDS
    return f"directory:{bucket:02d}"


DIRECTORY_ENTRY = EventType(
    name="directory.entry",
    source_model="residency.DirectoryEntry",
    fields={
        "kind": one_of("org", "user", "login"),
        "key": directory_key,
        "home_region": region_code,
        "version": positive_int,
        "origin_region": region_code,
    },
    object_key=_directory_object,
    shard_key=directory_shard,
    check="regions.replication.apply.directory_entry_check",
    apply="regions.replication.apply.directory_entries_apply",
)

EVENT_TYPES: dict[str, EventType] = {event.name: event for event in (DIRECTORY_ENTRY,)}


def validate_payload(event: EventType, payload: Mapping[str, Any]) -> None:
    """Raise ``PayloadRejected`` unless ``payload`` has exactly the allowlisted fields, each valid."""
    if not isinstance(payload, Mapping):
        raise PayloadRejected("payload_invalid", "The payload is not an object.")
    extra = set(payload) - set(event.fields)
    missing = set(event.fields) - set(payload)
    if extra:
        raise PayloadRejected(
            "payload_not_allowed", f"Fields outside the allowlist of {event.name}: {sorted(extra)}."
        )
    if missing:
        raise PayloadRejected("payload_invalid", f"Missing fields of {event.name}: {sorted(missing)}.")
    bad = sorted(name for name, valid in event.fields.items() if not valid(payload[name]))
    if bad:
        raise PayloadRejected("payload_invalid", f"Invalid values for {event.name}: {bad}.")


def payload_from(event: EventType, instance: models.Model) -> dict[str, Any]:
    """The payload of ``event`` for ``instance``: its allowlisted fields only, validated."""
    if not isinstance(instance, event.model()):
        raise TypeError(f"{event.name} is built from {event.source_model}, not {type(instance).__name__}.")
    payload = {name: getattr(instance, name) for name in event.fields}
    validate_payload(event, payload)
    return payload
