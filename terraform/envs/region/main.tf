# One region of the fleet, chosen by region code from the registry that Django
# reads (regions/registry.yaml): cloud region, zone and standby come from it.

module "registry" {
  source        = "../../modules/registry"
  registry_file = coalesce(var.registry_file, "${path.module}/../../../regions/registry.yaml")
}

locals {
  code   = coalesce(var.region_code, terraform.workspace)
  region = module.registry.regions[local.code]

  zone_cloud_regions = module.registry.allowed_cloud_regions[local.region.zone]
  standby_cloud_region = (
    var.enable_standby && local.region.standby != null
    ? module.registry.regions[local.region.standby].cloud_region
    : null
  )
}

resource "terraform_data" "workspace_guard" {
  input = local.code

  lifecycle {
    precondition {
      condition     = contains(["default", local.code], terraform.workspace)
      error_message = "Workspace ${terraform.workspace} holds another region's state; select workspace ${local.code} to deploy region ${local.code}."
    }
  }
}

module "region" {
  source = "../../modules/region"

  providers = {
    aws         = aws
    aws.standby = aws.standby
  }

  region               = local.region
  zone_cloud_regions   = local.zone_cloud_regions
  standby_cloud_region = local.standby_cloud_region
  name_prefix          = var.name_prefix
  dns_zone_id          = var.dns_zone_id
  zone_entry_host      = var.zone_entry_host
  image                = var.image
  code_version         = var.code_version
  vpc_cidr             = var.vpc_cidr
  db_instance_class    = var.db_instance_class
  redis_node_type      = var.redis_node_type
  db_password_version  = var.db_password_version
  secret_key_version   = var.secret_key_version
  deletion_protection  = var.deletion_protection
}
