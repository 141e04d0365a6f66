# The default provider is the region's cloud region; `standby` is its in-zone
# standby region (the same region when there is none, and then unused).
# `aws_endpoints` points every service at another endpoint (tests: moto).

locals {
  custom_endpoints = length(var.aws_endpoints) > 0
  default_tags = {
    Project   = var.name_prefix
    Region    = local.code
    Zone      = local.region.zone
    ManagedBy = "terraform"
  }
}

provider "aws" {
  region = local.region.cloud_region

  skip_credentials_validation = local.custom_endpoints
  skip_metadata_api_check     = local.custom_endpoints
  s3_use_path_style           = local.custom_endpoints
  max_retries                 = local.custom_endpoints ? 3 : 25

  dynamic "endpoints" {
    for_each = local.custom_endpoints ? [var.aws_endpoints] : []
    content {
      acm                    = lookup(endpoints.value, "acm", null)
      applicationautoscaling = lookup(endpoints.value, "applicationautoscaling", null)
      cloudwatch             = lookup(endpoints.value, "cloudwatch", null)
      ec2                    = lookup(endpoints.value, "ec2", null)
      ecs                    = lookup(endpoints.value, "ecs", null)
      elasticache            = lookup(endpoints.value, "elasticache", null)
      elbv2                  = lookup(endpoints.value, "elbv2", null)
      iam                    = lookup(endpoints.value, "iam", null)
      kms                    = lookup(endpoints.value, "kms", null)
      logs                   = lookup(endpoints.value, "logs", null)
      organizations          = lookup(endpoints.value, "organizations", null)
      rds                    = lookup(endpoints.value, "rds", null)
      route53                = lookup(endpoints.value, "route53", null)
      s3                     = lookup(endpoints.value, "s3", null)
      secretsmanager         = lookup(endpoints.value, "secretsmanager", null)
      sts                    = lookup(endpoints.value, "sts", null)
      wafv2                  = lookup(endpoints.value, "wafv2", null)
    }
  }

  default_tags {
    tags = local.default_tags
  }
}

provider "aws" {
  alias  = "standby"
  region = coalesce(local.standby_cloud_region, local.region.cloud_region)

  skip_credentials_validation = local.custom_endpoints
  skip_metadata_api_check     = local.custom_endpoints
  s3_use_path_style           = local.custom_endpoints
  max_retries                 = local.custom_endpoints ? 3 : 25

  dynamic "endpoints" {
    for_each = local.custom_endpoints ? [var.aws_endpoints] : []
    content {
      acm                    = lookup(endpoints.value, "acm", null)
      applicationautoscaling = lookup(endpoints.value, "applicationautoscaling", null)
      cloudwatch             = lookup(endpoints.value, "cloudwatch", null)
      ec2                    = lookup(endpoints.value, "ec2", null)
      ecs                    = lookup(endpoints.value, "ecs", null)
      elasticache            = lookup(endpoints.value, "elasticache", null)
      elbv2                  = lookup(endpoints.value, "elbv2", null)
      iam                    = lookup(endpoints.value, "iam", null)
      kms                    = lookup(endpoints.value, "kms", null)
      logs                   = lookup(endpoints.value, "logs", null)
      organizations          = lookup(endpoints.value, "organizations", null)
      rds                    = lookup(endpoints.value, "rds", null)
      route53                = lookup(endpoints.value, "route53", null)
      s3                     = lookup(endpoints.value, "s3", null)
      secretsmanager         = lookup(endpoints.value, "secretsmanager", null)
      sts                    = lookup(endpoints.value, "sts", null)
      wafv2                  = lookup(endpoints.value, "wafv2", null)
    }
  }

  default_tags {
    tags = merge(local.default_tags, { Role = "standby" })
  }
}
