# The in-zone standby of a region: an encrypted cross-region read replica of
# the region's PostgreSQL primary, in an isolated VPC of the standby region.
# Promoting it (README) is how the zone keeps the data when the region is lost.
# The provider of this module is the standby region's.

terraform {
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0, < 6.0.0"
    }
  }
}

variable "name" {
  description = "Name prefix (e.g. saas-eu-west-1-standby)."
  type        = string
}

variable "source_db_arn" {
  description = "ARN of the primary DB instance to replicate."
  type        = string
}

variable "standby_cloud_region" {
  description = "The cloud region this module must run in (checked against the provider)."
  type        = string
}

variable "zone_cloud_regions" {
  description = "Cloud regions allowed for the zone of the primary."
  type        = list(string)
}

variable "db_instance_class" {
  description = "Instance class of the standby replica."
  type        = string
}

variable "db_parameter_group_family" {
  description = "Parameter group family of the primary's engine."
  type        = string
}

variable "max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB (as the primary's)."
  type        = number
}

variable "backup_retention_days" {
  description = "Automated backups kept by the standby replica (in the standby region)."
  type        = number
}

variable "monitoring_role_arn" {
  description = "IAM role for RDS enhanced monitoring (IAM is global)."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the standby VPC (must not overlap the standby region's own VPC if they are ever peered)."
  type        = string
  default     = "10.250.0.0/16"
}

variable "log_retention_days" {
  description = "Retention of the standby's CloudWatch log groups."
  type        = number
}

variable "deletion_protection" {
  description = "Protect the standby replica from deletion."
  type        = bool
}

data "aws_region" "current" {}

# Pinned by name (a, b, c) so the set never grows silently when AWS adds a zone.
data "aws_availability_zones" "available" {
  state = "available"
  filter {
    name   = "zone-name"
    values = [for letter in ["a", "b", "c"] : "${var.standby_cloud_region}${letter}"]
  }
}

locals {
  azs   = slice(data.aws_availability_zones.available.names, 0, 2)
  db_id = var.name
}

resource "terraform_data" "residency_guard" {
  input = var.standby_cloud_region

  lifecycle {
    precondition {
      condition     = data.aws_region.current.name == var.standby_cloud_region && contains(var.zone_cloud_regions, data.aws_region.current.name)
      error_message = "Residency: the standby provider targets ${data.aws_region.current.name}; the standby must be in ${var.standby_cloud_region}, one of the zone's regions (${join(", ", var.zone_cloud_regions)})."
    }
  }
}



module "kms" {
  source = "../kms_key"

  description = "${var.name}: standby replica at rest"

  depends_on = [terraform_data.residency_guard]
}

resource "aws_vpc" "this" {
  #checkov:skip=CKV2_AWS_11:flow logs are enabled by module.flow_logs (modules/flow_logs), which the graph check does not follow
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name }

  depends_on = [terraform_data.residency_guard]
}

resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
}

resource "aws_subnet" "private" {
  count = 2

  vpc_id            = aws_vpc.this.id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, count.index)
  tags              = { Name = "${var.name}-${local.azs[count.index]}", Tier = "private" }
}


resource "aws_cloudwatch_log_group" "rds" {
  for_each = toset(["postgresql", "upgrade"])

  name              = "/aws/rds/instance/${local.db_id}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.arn
}






module "flow_logs" {
  source = "../flow_logs"

  name           = var.name
  vpc_id         = aws_vpc.this.id
  kms_key_arn    = module.kms.arn
  retention_days = var.log_retention_days
}

# No ingress until the standby is promoted and the standby region's app is
# pointed at it (README, "Promoting a standby").
resource "aws_security_group" "db" {
  name        = "${var.name}-db"
  description = "Standby PostgreSQL replica; no ingress until promotion"
  vpc_id      = aws_vpc.this.id
}

resource "aws_db_subnet_group" "this" {
  name       = var.name
  subnet_ids = aws_subnet.private[*].id
}


module "postgres_parameters" {
  source = "../postgres_parameter_group"

  name   = "${var.name}-postgres"
  family = var.db_parameter_group_family
}

resource "aws_db_instance" "standby" {
  identifier          = local.db_id
  replicate_source_db = var.source_db_arn
  instance_class      = var.db_instance_class

  max_allocated_storage  = var.max_allocated_storage
  storage_encrypted      = true
  kms_key_id             = module.kms.arn
  multi_az               = true
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  parameter_group_name   = module.postgres_parameters.name

  backup_retention_period   = var.backup_retention_days
  copy_tags_to_snapshot     = true
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.db_id}-final"
  deletion_protection       = var.deletion_protection

  iam_database_authentication_enabled   = true
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = module.kms.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 60
  monitoring_role_arn                   = var.monitoring_role_arn
  auto_minor_version_upgrade            = true

  depends_on = [aws_cloudwatch_log_group.rds]
}

output "db_instance_arn" {
  description = "ARN of the standby replica."
  value       = aws_db_instance.standby.arn
}

output "db_address" {
  description = "Host name of the standby replica."
  value       = aws_db_instance.standby.address
}

output "cloud_region" {
  description = "Cloud region of the standby replica."
  value       = data.aws_region.current.name
}
