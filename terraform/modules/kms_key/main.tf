# A customer-managed KMS key (rotation on) for data at rest in the provider's
# region, usable by CloudWatch Logs of that region for its log groups.

terraform {
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0, < 6.0.0"
    }
  }
}

variable "description" {
  description = "What the key protects."
  type        = string
}

variable "alias" {
  description = "Alias name without the alias/ prefix; null for none."
  type        = string
  default     = null
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
}

data "aws_iam_policy_document" "this" {
  # A key policy applies to its own key only: Resource "*" means this key, and
  # the account-root statement is the AWS default that lets IAM grant use.
  #checkov:skip=CKV_AWS_109:key policy; "*" is this key, administered by the account root only
  #checkov:skip=CKV_AWS_111:key policy; "*" is this key, administered by the account root only
  #checkov:skip=CKV_AWS_356:key policy; Resource "*" in a key policy is the key itself
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogsUseInRegion"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = var.description
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.this.json
}

resource "aws_kms_alias" "this" {
  count = var.alias == null ? 0 : 1

  name          = "alias/${var.alias}"
  target_key_id = aws_kms_key.this.key_id
}

output "arn" {
  description = "ARN of the key."
  value       = aws_kms_key.this.arn
}

output "key_id" {
  description = "Id of the key."
  value       = aws_kms_key.this.key_id
}
