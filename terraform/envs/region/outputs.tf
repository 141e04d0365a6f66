output "region" {
  description = "Region code, zone and cloud region."
  value       = module.region.region
}

output "app_environment" {
  description = "Non-secret environment of every container."
  value       = module.region.app_environment
}

output "app_secret_arns" {
  description = "Environment variable => Secrets Manager ARN (ECS injects the values)."
  value       = module.region.app_secret_arns
}

output "database" {
  description = "PostgreSQL endpoints: primary, replicas, standby."
  value       = module.region.database
}

output "redis_primary_endpoint" {
  description = "Redis primary endpoint (TLS + AUTH)."
  value       = module.region.redis_primary_endpoint
}

output "ecs" {
  description = "ECS cluster, services, task families, subnets and security groups."
  value       = module.region.ecs
}

output "global_endpoint" {
  description = "Add under region_endpoints[<code>] of envs/global."
  value       = module.region.global_endpoint
}
