"""Data classes: where each model's rows may live.

Every model declares one class (``data_class = DataClass.RESIDENT`` ...). The
system check ``residency.E001`` fails at boot for a model that declares none;
the residency write guard and the audit read the same declarations.

============  ===========================================  ======================
class         examples                                     replicated to peers?
============  ===========================================  ======================
resident      users, organizations, documents, idempotency  never
directory     (kind, key) -> home region                    yes, allowlisted fields
operational   outbox, dead letters, health, metrics         no
============  ===========================================  ======================
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import models


class DataClass(enum.StrEnum):
    RESIDENT = "resident"
    DIRECTORY = "directory"
    OPERATIONAL = "operational"


HOME_REGION_FIELD = "home_region"
"""Resident models carry their home region in this column; the write guard reads it."""


@dataclass(frozen=True, slots=True)
class Placement:
    data_class: DataClass
    home_region_field: str | None
    """Column holding the row's home region (resident models), else ``None``."""
    source: str
    """``model`` when declared on the class, ``settings`` for third-party models."""


def placement_of(model: type[models.Model]) -> Placement | None:
    """The declared placement of a model, or ``None`` when it declares none."""
    declared = getattr(model, "data_class", None)
    if declared is not None:
        data_class = DataClass(declared)
        field = HOME_REGION_FIELD if data_class is DataClass.RESIDENT else None
        return Placement(data_class, field, "model")
    third_party: Mapping[str, str] = getattr(settings, "THIRD_PARTY_DATA_CLASSES", {})
    label = model._meta.label_lower
    if label in third_party:
        return Placement(DataClass(third_party[label]), None, "settings")
    return None
