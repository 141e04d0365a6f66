output "zone_id" {
  description = "Route 53 zone id (dns_zone_id of envs/region)."
  value       = module.global.zone_id
}

output "name_servers" {
  description = "Delegate the domain to these at the registrar."
  value       = module.global.name_servers
}

output "zone_entry_hosts" {
  description = "Zone => latency entry host (zone_entry_host of envs/region)."
  value       = module.global.zone_entry_hosts
}

output "health_check_ids" {
  description = "Region => Route 53 health check id."
  value       = module.global.health_check_ids
}

output "failover_pairs" {
  description = "Region => in-zone standby it fails over to."
  value       = module.global.failover_pairs
}

output "region_deny_policies" {
  description = "SCP scope => id and allowed regions."
  value       = module.global.region_deny_policies
}
