# VPC flow logs of one VPC into an encrypted CloudWatch log group of the same
# region, written through a role that may write to that group only.

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
  description = "Name prefix of the log group and the role."
  type        = string
}

variable "vpc_id" {
  description = "The VPC whose traffic is logged."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key of the log group."
  type        = string
}

variable "retention_days" {
  description = "Retention of the log group."
  type        = number
}

data "aws_caller_identity" "current" {}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/${var.name}/vpc-flow"
  retention_in_days = var.retention_days
  kms_key_id        = var.kms_key_arn
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${replace(var.name, "/", "-")}-vpc-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

data "aws_iam_policy_document" "write" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "write-flow-logs"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.write.json
}

resource "aws_flow_log" "this" {
  vpc_id          = var.vpc_id
  traffic_type    = "ALL"
  log_destination = aws_cloudwatch_log_group.this.arn
  iam_role_arn    = aws_iam_role.this.arn
}
