"""System checks: every model declares where its data may live."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from regions.placement import DataClass, placement_of

TAG = "residency"


def _models(app_configs: Sequence[AppConfig] | None) -> Iterable[type[models.Model]]:
    configs = app_configs if app_configs is not None else apps.get_app_configs()
    for config in configs:
        for model in config.get_models():
            # Auto-created through tables (M2M) share their owner's class.
            if not model._meta.auto_created:
                yield model


@checks.register(TAG)
def check_data_classes(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """residency.E001: a model declares no data class. E002: a resident model has no home region."""
    messages: list[checks.CheckMessage] = []
    for model in _models(app_configs):
        placement = placement_of(model)
        if placement is None:
            messages.append(
                checks.Error(
                    f"Model {model._meta.label} declares no data class.",
                    hint="Set data_class = DataClass.RESIDENT / DIRECTORY / OPERATIONAL on the model "
                    "(regions.placement), or list a third-party model in THIRD_PARTY_DATA_CLASSES.",
                    obj=model,
                    id="residency.E001",
                )
            )
            continue
        if placement.data_class is DataClass.RESIDENT and placement.home_region_field:
            try:
                model._meta.get_field(placement.home_region_field)
            except FieldDoesNotExist:
                messages.append(
                    checks.Error(
                        f"Resident model {model._meta.label} has no {placement.home_region_field!r} field.",
                        hint="Resident rows carry their home region; the write guard and audit read it.",
                        obj=model,
                        id="residency.E002",
                    )
                )
    return messages
