"""``{% region_banner %}``: this region and its zone, in the zone's colour from the registry."""

from __future__ import annotations

from typing import Any

from django import template

from regions.selectors import current_region, current_zone

register = template.Library()


@register.inclusion_tag("admin/region_banner.html")
def region_banner() -> dict[str, Any]:
    zone = current_zone()
    return {"region": current_region().code, "zone": zone.code, "zone_label": zone.label, "color": zone.color}
