# Optional in-zone standby: a cross-region read replica of the primary in the
# registry's standby region. The variable validation on standby_cloud_region
# and the standby module's guard refuse any region outside the zone.

module "standby" {
  source = "../standby"
  count  = var.standby_cloud_region == null ? 0 : 1

  providers = {
    aws = aws.standby
  }

  name                      = "${local.name}-standby"
  source_db_arn             = aws_db_instance.primary.arn
  standby_cloud_region      = var.standby_cloud_region
  zone_cloud_regions        = var.zone_cloud_regions
  db_instance_class         = var.db_instance_class
  db_parameter_group_family = var.db_parameter_group_family
  max_allocated_storage     = var.db_max_allocated_storage
  backup_retention_days     = var.db_backup_retention_days
  monitoring_role_arn       = aws_iam_role.rds_monitoring.arn
  log_retention_days        = var.log_retention_days
  deletion_protection       = var.deletion_protection
}
