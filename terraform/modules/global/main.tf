# Global routing and guardrails: the public Route 53 zone, one health check per
# deployed region on /health/ready, per-zone latency entries over in-zone
# failover pairs, and the region-deny SCPs. Route 53 and Organizations are
# global services whose API lives in us-east-1.

terraform {
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100.0, < 6.0.0"
    }
  }
}

variable "dns_zone_name" {
  description = "The public DNS zone holding every region's hosts (e.g. saas.example.com)."
  type        = string
}

variable "regions" {
  description = "Registry regions (modules/registry output `regions`)."
  type = map(object({
    code          = string
    zone          = string
    cloud_region  = string
    public_host   = string
    internal_host = string
    standby       = optional(string)
  }))
}

variable "zones" {
  description = "Registry zones (modules/registry output `zones`)."
  type        = map(object({ label = string, color = string }))
}

variable "region_endpoints" {
  description = "Deployed regions: code => the `global_endpoint` output of its envs/region apply. A region of the registry not listed here gets no records yet."
  type        = map(object({ alb_dns_name = string, alb_zone_id = string }))
  default     = {}

  validation {
    condition     = alltrue([for code in keys(var.region_endpoints) : contains(keys(var.regions), code)])
    error_message = "region_endpoints names a region that is not in the registry."
  }
}

variable "health_check" {
  description = "Route 53 health check settings (path is fixed to /health/ready)."
  type        = object({ failure_threshold = number, request_interval = number })
  default     = { failure_threshold = 3, request_interval = 10 }
}

variable "global_service_actions" {
  description = "Actions of global services whose endpoint is in us-east-1; the region-deny SCPs exempt them (see README for why each is here)."
  type        = list(string)
  default = [
    "iam:*",
    "sts:*",
    "organizations:*",
    "account:*",
    "route53:*",
    "route53domains:*",
    "cloudfront:*",
    "waf:*",
    "wafv2:*",
    "shield:*",
    "globalaccelerator:*",
    "budgets:*",
    "ce:*",
    "cur:*",
    "health:*",
    "pricing:*",
    "support:*",
    "trustedadvisor:*",
    "s3:ListAllMyBuckets",
    "s3:GetAccountPublicAccessBlock",
    "s3:PutAccountPublicAccessBlock",
  ]
}

variable "scp_targets" {
  description = "Where to attach the region-deny SCPs: key `fleet` (allows every registry region) or a zone code (allows that zone's regions only) => organization root, OU or account ids. `fleet` defaults to the organization root."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.scp_targets) : k == "fleet" || can(regex("^[A-Z]{2,8}$", k))])
    error_message = "scp_targets keys are `fleet` or zone codes."
  }
}

locals {
  deployed = {
    for code, ep in var.region_endpoints : code => merge(var.regions[code], ep)
  }

  # Zone entry host, e.g. eu.api.saas.example.com.
  zone_entry_hosts = { for z in keys(var.zones) : z => "${lower(z)}.api.${var.dns_zone_name}" }

  # Failover pairs: a deployed region whose deployed standby is in the same zone.
  failover_pairs = {
    for code, r in local.deployed : code => r.standby
    if r.standby != null && contains(keys(local.deployed), coalesce(r.standby, "-"))
  }

  cross_zone_pairs = [
    for code, standby in local.failover_pairs : "${code} -> ${standby}"
    if var.regions[standby].zone != var.regions[code].zone
  ]

  allowed_by_zone = {
    for z in keys(var.zones) : z => sort(distinct([for r in values(var.regions) : r.cloud_region if r.zone == z]))
  }
  fleet_regions = sort(distinct([for r in values(var.regions) : r.cloud_region]))
}

# ---------------------------------------------------------------- zone
resource "aws_route53_zone" "this" {
  #checkov:skip=CKV2_AWS_38:DNSSEC signing needs a KMS KSK and a DS record at the registrar; an operator step in README
  name    = var.dns_zone_name
  comment = "Multi-region SaaS: region hosts, zone entries, certificate validation"
}

module "dns_logs_kms" {
  source = "../kms_key"

  description = "Route 53 query logs of ${var.dns_zone_name}"
}

resource "aws_cloudwatch_log_group" "dns_queries" {
  name              = "/aws/route53/${var.dns_zone_name}"
  retention_in_days = 365
  kms_key_id        = module.dns_logs_kms.arn
}

data "aws_region" "current" {}



data "aws_iam_policy_document" "dns_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.dns_queries.arn}:*"]
    principals {
      type        = "Service"
      identifiers = ["route53.amazonaws.com"]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "dns_logs" {
  policy_name     = "route53-query-logs-${replace(var.dns_zone_name, ".", "-")}"
  policy_document = data.aws_iam_policy_document.dns_logs.json
}

resource "aws_route53_query_log" "this" {
  zone_id                  = aws_route53_zone.this.zone_id
  cloudwatch_log_group_arn = aws_cloudwatch_log_group.dns_queries.arn

  depends_on = [aws_cloudwatch_log_resource_policy.dns_logs]
}

# ---------------------------------------------------------------- health checks
# Each checks the region's own public host (a plain alias to its ALB that
# never fails over: failover happens on the zone entry), so a standby taking
# over never masks the region's state. Fast interval, as regions/README.md
# recommends for /health/ready.
resource "aws_route53_health_check" "region" {
  for_each = local.deployed

  type              = "HTTPS"
  fqdn              = each.value.public_host
  port              = 443
  resource_path     = "/health/ready"
  enable_sni        = true
  failure_threshold = var.health_check.failure_threshold
  request_interval  = var.health_check.request_interval
  measure_latency   = true

  tags = { Name = "${each.key} /health/ready", Region = each.key, Zone = each.value.zone }
}

# ---------------------------------------------------------------- records
# Region hosts: what the registry's public_url and internal_url name.
resource "aws_route53_record" "public" {
  #checkov:skip=CKV2_AWS_23:aliases the regional stacks' ALBs, passed in as region_endpoints from their state
  for_each = local.deployed

  zone_id = aws_route53_zone.this.zone_id
  name    = each.value.public_host
  type    = "A"

  alias {
    name                   = each.value.alb_dns_name
    zone_id                = each.value.alb_zone_id
    evaluate_target_health = true
  }
}

resource "aws_route53_record" "internal" {
  #checkov:skip=CKV2_AWS_23:aliases the regional stacks' ALBs, passed in as region_endpoints from their state
  for_each = local.deployed

  zone_id = aws_route53_zone.this.zone_id
  name    = each.value.internal_host
  type    = "A"

  alias {
    name                   = each.value.alb_dns_name
    zone_id                = each.value.alb_zone_id
    evaluate_target_health = true
  }
}

# In-zone failover pair per region, e.g. eu-west-1.failover.eu.api.<zone>:
# PRIMARY = the region, SECONDARY = its registry standby (same zone, checked).
resource "terraform_data" "failover_guard" {
  input = local.failover_pairs

  lifecycle {
    precondition {
      condition     = length(local.cross_zone_pairs) == 0
      error_message = "Residency: failover must stay inside a zone; refused: ${join(", ", local.cross_zone_pairs)}."
    }
  }
}

locals {
  failover_name = { for code, r in local.deployed : code => "${code}.failover.${local.zone_entry_hosts[r.zone]}" }

  failover_records = merge(
    {
      for code, r in local.deployed : "${code}/PRIMARY" => {
        region = code, role = "PRIMARY", target = code
      }
    },
    {
      for code, standby in local.failover_pairs : "${code}/SECONDARY" => {
        region = code, role = "SECONDARY", target = standby
      }
    },
  )
}

resource "aws_route53_record" "failover" {
  for_each = local.failover_records

  zone_id         = aws_route53_zone.this.zone_id
  name            = local.failover_name[each.value.region]
  type            = "A"
  set_identifier  = "${each.value.region}-${lower(each.value.role)}"
  health_check_id = aws_route53_health_check.region[each.value.target].id

  failover_routing_policy {
    type = each.value.role
  }

  alias {
    name                   = local.deployed[each.value.target].alb_dns_name
    zone_id                = local.deployed[each.value.target].alb_zone_id
    evaluate_target_health = true
  }

  depends_on = [terraform_data.failover_guard]
}

# Zone entry, e.g. eu.api.<zone>: latency-based over the zone's regions only,
# each pointing at that region's in-zone failover pair.
resource "aws_route53_record" "zone_entry" {
  for_each = local.deployed

  zone_id        = aws_route53_zone.this.zone_id
  name           = local.zone_entry_hosts[each.value.zone]
  type           = "A"
  set_identifier = each.key

  latency_routing_policy {
    region = each.value.cloud_region
  }

  alias {
    name                   = local.failover_name[each.key]
    zone_id                = aws_route53_zone.this.zone_id
    evaluate_target_health = true
  }

  depends_on = [aws_route53_record.failover]
}

# ---------------------------------------------------------------- region-deny SCPs
data "aws_organizations_organization" "this" {}

locals {
  scp_allowed = merge(
    { fleet = local.fleet_regions },
    { for z, regions in local.allowed_by_zone : z => regions },
  )

  scp_targets = merge(
    { fleet = [data.aws_organizations_organization.this.roots[0].id] },
    var.scp_targets,
  )

  scp_attachments = merge([
    for scope, targets in local.scp_targets : {
      for t in targets : "${scope}/${t}" => { scope = scope, target = t }
    }
  ]...)
}

data "aws_iam_policy_document" "region_deny" {
  for_each = local.scp_allowed

  statement {
    sid         = "DenyOutsideAllowedRegions"
    effect      = "Deny"
    not_actions = var.global_service_actions
    resources   = ["*"]

    condition {
      test     = "StringNotEquals"
      variable = "aws:RequestedRegion"
      values   = each.value
    }
  }
}

resource "aws_organizations_policy" "region_deny" {
  for_each = local.scp_allowed

  name        = "region-deny-${lower(each.key)}"
  description = "Deny requests outside ${each.key == "fleet" ? "the registry's regions" : "zone ${each.key}"}: ${join(", ", each.value)}"
  type        = "SERVICE_CONTROL_POLICY"
  content     = data.aws_iam_policy_document.region_deny[each.key].minified_json
}

resource "aws_organizations_policy_attachment" "region_deny" {
  for_each = local.scp_attachments

  policy_id = aws_organizations_policy.region_deny[each.value.scope].id
  target_id = each.value.target
}

# ---------------------------------------------------------------- outputs
output "zone_id" {
  description = "The Route 53 zone id (input `dns_zone_id` of envs/region)."
  value       = aws_route53_zone.this.zone_id
}

output "name_servers" {
  description = "Delegate the domain to these name servers at the registrar."
  value       = aws_route53_zone.this.name_servers
}

output "zone_entry_hosts" {
  description = "Residency zone => latency entry host (input `zone_entry_host` of envs/region)."
  value       = local.zone_entry_hosts
}

output "health_check_ids" {
  description = "Region code => Route 53 health check id."
  value       = { for k, h in aws_route53_health_check.region : k => h.id }
}

output "failover_pairs" {
  description = "Region code => in-zone standby it fails over to."
  value       = local.failover_pairs
}

output "region_deny_policies" {
  description = "SCP scope (fleet or zone) => {id, allowed regions}."
  value       = { for k, p in aws_organizations_policy.region_deny : k => { id = p.id, allowed_regions = local.scp_allowed[k] } }
}
