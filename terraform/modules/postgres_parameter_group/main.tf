# The PostgreSQL parameters of every instance (primary, replicas, standby):
# TLS required, DDL and slow statements logged.

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
  description = "Parameter group name."
  type        = string
}

variable "family" {
  description = "Parameter group family, e.g. postgres15."
  type        = string
}

resource "aws_db_parameter_group" "this" {
  name   = var.name
  family = var.family

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
}

output "name" {
  description = "Parameter group name."
  value       = aws_db_parameter_group.this.name
}
