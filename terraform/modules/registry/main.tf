# Reads regions/registry.yaml, the file Django reads too, and checks the same
# rules as regions/registry.py (regions.E002-E007) so that a bad registry stops
# `terraform plan` with a clear message, before anything is created.

terraform {
  required_version = ">= 1.11.0"
}

variable "registry_file" {
  description = "Path of the region registry (regions/registry.yaml)."
  type        = string
}

locals {
  raw = yamldecode(file(var.registry_file))

  zones = {
    for code, zone in try(local.raw.zones, {}) : code => {
      label = zone.label
      color = zone.color
    }
  }

  region_list = [
    for r in try(local.raw.regions, []) : {
      code          = r.code
      zone          = r.zone
      public_url    = r.public_url
      internal_url  = r.internal_url
      cloud_region  = r.cloud_region
      standby       = try(r.standby, null)
      public_host   = regex("^https?://([^/:]+)", r.public_url)[0]
      internal_host = regex("^https?://([^/:]+)", r.internal_url)[0]
    }
  ]

  regions = { for r in local.region_list : r.code => r }

  # Cloud regions allowed for each residency zone.
  allowed_cloud_regions = {
    for zone in keys(local.zones) : zone => distinct([
      for r in local.region_list : r.cloud_region if r.zone == zone
    ])
  }

  unknown_zones = [for r in local.region_list : "${r.code} (zone ${r.zone})" if !contains(keys(local.zones), r.zone)]
  duplicate_codes = [
    for code in distinct([for r in local.region_list : r.code]) : code
    if length([for r in local.region_list : r if r.code == code]) > 1
  ]
  unknown_standbys = [
    for r in local.region_list : "${r.code} -> ${r.standby}"
    if r.standby != null && !contains(keys(local.regions), coalesce(r.standby, "-"))
  ]
  cross_zone_standbys = [
    for r in local.region_list : "${r.code} (zone ${r.zone}) -> ${r.standby} (zone ${local.regions[r.standby].zone})"
    if r.standby != null && contains(keys(local.regions), coalesce(r.standby, "-")) && try(local.regions[r.standby].zone, "") != r.zone
  ]
  self_standbys = [for r in local.region_list : r.code if r.standby == r.code]
}

output "zones" {
  description = "Residency zones: code => {label, color}."
  value       = local.zones

  precondition {
    condition     = length(local.zones) > 0 && length(local.region_list) > 0
    error_message = "Registry ${var.registry_file} lists no zones or no regions."
  }
}

output "regions" {
  description = "Regions by code: {code, zone, public_url, internal_url, cloud_region, standby, public_host, internal_host}."
  value       = local.regions

  precondition {
    condition     = length(local.duplicate_codes) == 0
    error_message = "Registry: duplicate region codes: ${join(", ", local.duplicate_codes)} (regions.E003)."
  }
  precondition {
    condition     = length(local.unknown_zones) == 0
    error_message = "Registry: regions in a zone that is not listed under zones: ${join(", ", local.unknown_zones)} (regions.E004)."
  }
  precondition {
    condition     = length(local.unknown_standbys) == 0
    error_message = "Registry: standby is not a region of the registry: ${join(", ", local.unknown_standbys)} (regions.E006)."
  }
  precondition {
    condition     = length(local.cross_zone_standbys) == 0 && length(local.self_standbys) == 0
    error_message = "Registry: a standby must be another region of the same residency zone; refused: ${join(", ", concat(local.cross_zone_standbys, local.self_standbys))} (regions.E007)."
  }
}

output "allowed_cloud_regions" {
  description = "Cloud regions allowed for each zone: zone => [cloud_region, ...]."
  value       = local.allowed_cloud_regions
}
