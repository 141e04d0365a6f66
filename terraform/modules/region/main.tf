# One region of the fleet: network, data stores, compute, load balancer, logs,
# secrets and IAM, all in the provider's region, which must be the registry's
# cloud_region for this region code.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

# Pinned by name (a, b, c) so the set never grows silently when AWS adds a zone.
data "aws_availability_zones" "available" {
  state = "available"
  filter {
    name   = "zone-name"
    values = [for letter in ["a", "b", "c"] : "${var.region.cloud_region}${letter}"]
  }
}

locals {
  code       = var.region.code
  name       = "${var.name_prefix}-${var.region.code}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  azs        = slice(data.aws_availability_zones.available.names, 0, var.az_count)

  # Hosts the app answers on: its registry hosts and, if any, the zone entry.
  app_hosts = compact([var.region.public_host, var.region.internal_host, var.zone_entry_host])
}

# The residency guard of the whole module: every resource below uses the
# default provider, so checking its region once covers all of them.
resource "terraform_data" "residency_guard" {
  input = {
    region       = local.code
    cloud_region = var.region.cloud_region
    zone         = var.region.zone
  }

  lifecycle {
    precondition {
      condition     = data.aws_region.current.name == var.region.cloud_region
      error_message = "Residency: the AWS provider targets ${data.aws_region.current.name}, but the registry puts region ${local.code} in ${var.region.cloud_region}."
    }
  }
}

# ---------------------------------------------------------------- KMS
# One customer-managed key per region encrypts RDS (storage and Performance
# Insights), Redis at rest, Secrets Manager and the CloudWatch log groups.
module "kms" {
  source = "../kms_key"

  description = "${local.name}: data at rest (RDS, Redis, secrets, logs)"
  alias       = local.name

  depends_on = [terraform_data.residency_guard]
}

# ---------------------------------------------------------------- logs
resource "aws_cloudwatch_log_group" "service" {
  for_each = toset(["web", "worker", "beat"])

  name              = "/${var.name_prefix}/${local.code}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.arn
}


resource "aws_cloudwatch_log_group" "redis" {
  name              = "/${var.name_prefix}/${local.code}/redis-slow"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.arn
}

# RDS would create these itself with no retention and no CMK; creating them
# first keeps the exported PostgreSQL logs encrypted and bounded.
resource "aws_cloudwatch_log_group" "rds" {
  for_each = toset(flatten([
    for id in [local.db_primary_id, local.db_replica_id] : [
      "/aws/rds/instance/${id}/postgresql",
      "/aws/rds/instance/${id}/upgrade",
    ]
  ]))

  name              = each.key
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.arn
}
