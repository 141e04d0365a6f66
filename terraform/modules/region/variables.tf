# Inputs of one region. The registry fields come from regions/registry.yaml
# (through modules/registry); nothing secret is ever an input.

variable "region" {
  description = "The registry entry of this region (modules/registry output `regions[code]`)."
  type = object({
    code          = string
    zone          = string
    cloud_region  = string
    public_url    = string
    internal_url  = string
    public_host   = string
    internal_host = string
    standby       = optional(string)
  })
}

variable "zone_cloud_regions" {
  description = "Cloud regions allowed for this region's residency zone (modules/registry output `allowed_cloud_regions[zone]`)."
  type        = list(string)

  validation {
    condition     = contains(var.zone_cloud_regions, var.region.cloud_region)
    error_message = "Region ${var.region.code}: its cloud region ${var.region.cloud_region} is not among the allowed regions of zone ${var.region.zone} (${join(", ", var.zone_cloud_regions)})."
  }
}

variable "standby_cloud_region" {
  description = "Cloud region of the in-zone standby (the registry's `standby`), or null for none. A cross-region read replica of the primary is created there."
  type        = string
  default     = null

  validation {
    condition     = var.standby_cloud_region == null || (contains(var.zone_cloud_regions, coalesce(var.standby_cloud_region, "-")) && var.standby_cloud_region != var.region.cloud_region)
    error_message = "Residency: refusing a standby of region ${var.region.code} (zone ${var.region.zone}) in ${coalesce(var.standby_cloud_region, "-")}: a standby must be another cloud region of the same zone (${join(", ", var.zone_cloud_regions)})."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "saas"
}

variable "dns_zone_id" {
  description = "Route 53 public zone (output `zone_id` of envs/global) where the certificate's DNS validation records go."
  type        = string
}

variable "zone_entry_host" {
  description = "The zone's latency/failover entry host (output `zone_entry_hosts[zone]` of envs/global), accepted by the app besides the registry hosts; null for none."
  type        = string
  default     = null
}

variable "image" {
  description = "Container image of the app (gunicorn, Celery worker and beat run the same image)."
  type        = string
}

variable "code_version" {
  description = "Version label passed to the app as CODE_VERSION."
  type        = string
  default     = "dev"
}

variable "vpc_cidr" {
  description = "CIDR block of the region's VPC."
  type        = string
  default     = "10.20.0.0/16"
}

variable "az_count" {
  description = "Availability zones to spread subnets, NAT gateways, RDS and Redis over (at least 2)."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2
    error_message = "az_count must be at least 2."
  }
}

variable "db_instance_class" {
  description = "Instance class of the PostgreSQL primary and its replicas."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_engine_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "15"
}

variable "db_parameter_group_family" {
  description = "Parameter group family matching db_engine_version."
  type        = string
  default     = "postgres15"
}

variable "db_allocated_storage" {
  description = "Initial storage of the primary in GiB (autoscaled up to db_max_allocated_storage)."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 500
}

variable "db_backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery) kept in the region."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 7 and 35."
  }
}

variable "db_password_version" {
  description = "Bump to rotate the database password: a new random password is written to RDS and to the DATABASE_URL secrets in one apply."
  type        = number
  default     = 1
}

variable "secret_key_version" {
  description = "Bump to rotate Django's SECRET_KEY (a new random value is written to Secrets Manager)."
  type        = number
  default     = 1
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.medium"
}

variable "redis_engine_version" {
  description = "Redis engine version."
  type        = string
  default     = "7.1"
}

variable "services" {
  description = "Size of the ECS services: CPU units, memory MiB, and for web and worker the autoscaling range."
  type = object({
    web    = object({ cpu = number, memory = number, min = number, max = number })
    worker = object({ cpu = number, memory = number, min = number, max = number })
    beat   = object({ cpu = number, memory = number })
  })
  default = {
    web    = { cpu = 512, memory = 1024, min = 2, max = 10 }
    worker = { cpu = 512, memory = 1024, min = 2, max = 10 }
    beat   = { cpu = 256, memory = 512 }
  }
}

variable "autoscaling_cpu_target" {
  description = "Average CPU percent that web and worker autoscaling keeps."
  type        = number
  default     = 60
}

variable "commands" {
  description = "Container commands of the three services."
  type        = object({ web = list(string), worker = list(string), beat = list(string) })
  default = {
    # gunicorn.conf.py (repository root) adds JSON logs, multiprocess metrics and no IP access log.
    web    = ["gunicorn", "saas.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
    worker = ["celery", "-A", "saas", "worker", "--loglevel", "INFO"]
    beat   = ["celery", "-A", "saas", "beat", "--loglevel", "INFO", "--schedule", "/tmp/celerybeat-schedule"]
  }
}

variable "fleet_secret_names" {
  description = "Environment variables whose value is the same in every region (DIRECTORY_SECRET, AUDIT_SIGNING_KEYS). Terraform creates the empty secret; an operator copies the fleet's value in (README)."
  type        = list(string)
  default     = ["DIRECTORY_SECRET", "AUDIT_SIGNING_KEYS"]
}

variable "extra_environment" {
  description = "Extra non-secret environment variables for every container."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups."
  type        = number
  default     = 365
}

variable "alb_log_retention_days" {
  description = "Days the ALB access logs are kept in the region's S3 bucket."
  type        = number
  default     = 90
}

variable "deletion_protection" {
  description = "Protect the databases and the load balancer from deletion (turn off only to tear a region down)."
  type        = bool
  default     = true
}
