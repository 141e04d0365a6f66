# What the app's environment and the global stack need. No secret values: the
# secrets are referenced by ARN and injected by ECS.

output "region" {
  description = "Region code and where it runs."
  value = {
    code         = local.code
    zone         = var.region.zone
    cloud_region = data.aws_region.current.name
  }
}

output "app_environment" {
  description = "Non-secret environment variables every container gets."
  value       = local.environment
}

output "app_secret_arns" {
  description = "Environment variable => Secrets Manager ARN injected by ECS (values never leave Secrets Manager)."
  value       = { for k, s in aws_secretsmanager_secret.app : k => s.arn }
}

output "database" {
  description = "PostgreSQL endpoints (host:port) of the primary and the in-region replica, and the standby if any."
  value = {
    primary         = local.db_host_port
    replicas        = [local.replica_host]
    primary_arn     = aws_db_instance.primary.arn
    standby_address = try(module.standby[0].db_address, null)
    standby_region  = try(module.standby[0].cloud_region, null)
  }
}

output "redis_primary_endpoint" {
  description = "Redis primary endpoint (host:port); TLS and AUTH required."
  value       = local.redis_endpoint
}

output "ecs" {
  description = "ECS cluster and service names (for deploys and one-off tasks such as migrate)."
  value = {
    cluster             = aws_ecs_cluster.this.name
    services            = { for k, s in aws_ecs_service.service : k => s.name }
    task_definitions    = { for k, t in aws_ecs_task_definition.service : k => t.family }
    private_subnet_ids  = aws_subnet.private[*].id
    app_security_groups = { for k, g in aws_security_group.app : k => g.id }
  }
}

output "vpc_id" {
  description = "The region's VPC."
  value       = aws_vpc.this.id
}

output "kms_key_arn" {
  description = "The region's customer-managed KMS key."
  value       = module.kms.arn
}

output "global_endpoint" {
  description = "What envs/global needs for this region (put it under region_endpoints[code])."
  value = {
    alb_dns_name = aws_lb.this.dns_name
    alb_zone_id  = aws_lb.this.zone_id
  }
}
