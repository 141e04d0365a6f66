variable "region_code" {
  description = "Registry code of the region to deploy. Defaults to the workspace name (one workspace per region)."
  type        = string
  default     = null
}

variable "registry_file" {
  description = "The region registry; defaults to regions/registry.yaml of this repository, the file Django reads."
  type        = string
  default     = null
}

variable "dns_zone_id" {
  description = "Route 53 zone id from envs/global (output zone_id)."
  type        = string
}

variable "zone_entry_host" {
  description = "This region's zone entry host from envs/global (output zone_entry_hosts[zone]); null for none."
  type        = string
  default     = null
}

variable "image" {
  description = "Container image of the app."
  type        = string
}

variable "code_version" {
  description = "Version label of the image (CODE_VERSION)."
  type        = string
  default     = "dev"
}

variable "enable_standby" {
  description = "Create the registry's in-zone standby replica for this region, if the registry names one."
  type        = bool
  default     = true
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "saas"
}

variable "vpc_cidr" {
  description = "CIDR block of the region's VPC."
  type        = string
  default     = "10.20.0.0/16"
}

variable "db_instance_class" {
  description = "RDS instance class of the primary and replicas."
  type        = string
  default     = "db.t4g.medium"
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.t4g.medium"
}

variable "db_password_version" {
  description = "Bump to rotate the database password."
  type        = number
  default     = 1
}

variable "secret_key_version" {
  description = "Bump to rotate Django's SECRET_KEY."
  type        = number
  default     = 1
}

variable "deletion_protection" {
  description = "Deletion protection of the databases and load balancer."
  type        = bool
  default     = true
}

variable "aws_endpoints" {
  description = "Service => endpoint URL overrides (tests point them at moto). Empty for AWS."
  type        = map(string)
  default     = {}
}
