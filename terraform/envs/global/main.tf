# Global routing and guardrails for every region of the registry.

module "registry" {
  source        = "../../modules/registry"
  registry_file = coalesce(var.registry_file, "${path.module}/../../../regions/registry.yaml")
}

locals {
  hosts_outside_zone = [
    for r in values(module.registry.regions) : r.code
    if !endswith(r.public_host, ".${var.dns_zone_name}") || !endswith(r.internal_host, ".${var.dns_zone_name}")
  ]
}

resource "terraform_data" "dns_guard" {
  input = var.dns_zone_name

  lifecycle {
    precondition {
      condition     = length(local.hosts_outside_zone) == 0
      error_message = "Registry hosts of ${join(", ", local.hosts_outside_zone)} are not inside ${var.dns_zone_name}."
    }
  }
}

module "global" {
  source = "../../modules/global"

  dns_zone_name    = var.dns_zone_name
  regions          = module.registry.regions
  zones            = module.registry.zones
  region_endpoints = var.region_endpoints
  scp_targets      = var.scp_targets
}
