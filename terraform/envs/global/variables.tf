variable "registry_file" {
  description = "The region registry; defaults to regions/registry.yaml of this repository, the file Django reads."
  type        = string
  default     = null
}

variable "dns_zone_name" {
  description = "Public DNS zone of the fleet; every registry host must be inside it."
  type        = string
  default     = "saas.example.com"
}

variable "region_endpoints" {
  description = "Deployed regions: code => global_endpoint output of envs/region."
  type        = map(object({ alb_dns_name = string, alb_zone_id = string }))
  default     = {}
}

variable "scp_targets" {
  description = "fleet or zone code => organization root/OU/account ids to attach the region-deny SCP to (fleet defaults to the root)."
  type        = map(list(string))
  default     = {}
}

variable "name_prefix" {
  description = "Project tag."
  type        = string
  default     = "saas"
}

variable "aws_endpoints" {
  description = "Service => endpoint URL overrides (tests point them at moto). Empty for AWS."
  type        = map(string)
  default     = {}
}
