# PostgreSQL primary + in-region streaming read replica, Redis, and the
# secrets the app reads. No secret value is an input or an output.

locals {
  db_primary_id = "${local.name}-primary"
  db_replica_id = "${local.name}-replica-1"
  db_name       = "saas"
  db_username   = "saas"
}

module "postgres_parameters" {
  source = "../postgres_parameter_group"

  name   = "${local.name}-postgres"
  family = var.db_parameter_group_family
}

resource "aws_db_subnet_group" "this" {
  name       = local.name
  subnet_ids = aws_subnet.private[*].id
}


data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${local.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

# The database password exists only during an apply: RDS receives it through a
# write-only argument and the DATABASE_URL secrets through write-only secret
# versions, so it is in no variable, plan, state or output.
ephemeral "aws_secretsmanager_random_password" "db" {
  password_length     = 40
  exclude_punctuation = true
}

resource "aws_db_instance" "primary" {
  identifier     = local.db_primary_id
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  db_name             = local.db_name
  username            = local.db_username
  password_wo         = ephemeral.aws_secretsmanager_random_password.db.random_password
  password_wo_version = var.db_password_version

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = module.kms.arn

  multi_az               = true
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  parameter_group_name   = module.postgres_parameters.name

  backup_retention_period   = var.db_backup_retention_days
  backup_window             = "02:00-03:00"
  maintenance_window        = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.db_primary_id}-final"
  deletion_protection       = var.deletion_protection

  iam_database_authentication_enabled   = true
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = module.kms.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  auto_minor_version_upgrade            = true

  depends_on = [aws_cloudwatch_log_group.rds]
}

# In-region streaming replica: the app's `replica_1` alias.
resource "aws_db_instance" "replica" {
  identifier          = local.db_replica_id
  replicate_source_db = aws_db_instance.primary.identifier
  instance_class      = var.db_instance_class

  max_allocated_storage  = var.db_max_allocated_storage
  storage_encrypted      = true
  kms_key_id             = module.kms.arn
  multi_az               = true
  vpc_security_group_ids = [aws_security_group.db.id]
  publicly_accessible    = false
  parameter_group_name   = module.postgres_parameters.name

  copy_tags_to_snapshot = true
  skip_final_snapshot   = true
  deletion_protection   = var.deletion_protection

  iam_database_authentication_enabled   = true
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = module.kms.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  auto_minor_version_upgrade            = true

  depends_on = [aws_cloudwatch_log_group.rds]
}

# ---------------------------------------------------------------- Redis
resource "aws_elasticache_subnet_group" "this" {
  name       = local.name
  subnet_ids = aws_subnet.private[*].id
}

# ElastiCache has no write-only argument for the AUTH token, so the token is in
# the (KMS-encrypted, S3) state, marked sensitive, and never in a variable or an
# output. It is read once; later reads are ignored so it does not churn.
data "aws_secretsmanager_random_password" "redis" {
  password_length     = 64
  exclude_punctuation = true
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = local.name
  description          = "Cache, sessions, rate limits and Celery broker of ${local.code}"
  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  port                 = 6379

  num_cache_clusters         = var.az_count
  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.redis.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = module.kms.arn
  transit_encryption_enabled = true
  auth_token                 = data.aws_secretsmanager_random_password.redis.random_password

  snapshot_retention_limit   = 7
  snapshot_window            = "01:00-02:00"
  maintenance_window         = "sun:04:30-sun:05:30"
  auto_minor_version_upgrade = true

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.redis.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }

  lifecycle {
    ignore_changes = [auth_token]
  }
}

# ---------------------------------------------------------------- secrets
# Each secret is one environment variable of the app. ECS injects them into the
# containers at start (task definition `secrets`); values are written with
# write-only arguments and never appear in plan, state or outputs (except the
# Redis token, see above).

locals {
  db_host_port   = "${aws_db_instance.primary.address}:${aws_db_instance.primary.port}"
  replica_host   = "${aws_db_instance.replica.address}:${aws_db_instance.replica.port}"
  redis_endpoint = "${aws_elasticache_replication_group.this.primary_endpoint_address}:6379"

  generated_secrets = ["SECRET_KEY", "METRICS_TOKEN", "DATABASE_URL", "REPLICA_DATABASE_URLS", "REDIS_URL", "CELERY_BROKER_URL"]
  secret_names      = concat(local.generated_secrets, var.fleet_secret_names)
}

resource "aws_secretsmanager_secret" "app" {
  #checkov:skip=CKV2_AWS_57:rotated by Terraform (bump db_password_version / secret_key_version), no rotation Lambda; see README
  for_each = toset(local.secret_names)

  name                    = "${var.name_prefix}/${local.code}/${each.key}"
  description             = "${each.key} of the ${local.code} app"
  kms_key_id              = module.kms.arn
  recovery_window_in_days = 7
}

ephemeral "aws_secretsmanager_random_password" "secret_key" {
  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret_version" "secret_key" {
  secret_id                = aws_secretsmanager_secret.app["SECRET_KEY"].id
  secret_string_wo         = ephemeral.aws_secretsmanager_random_password.secret_key.random_password
  secret_string_wo_version = var.secret_key_version
}

ephemeral "aws_secretsmanager_random_password" "metrics_token" {
  password_length     = 48
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret_version" "metrics_token" {
  secret_id                = aws_secretsmanager_secret.app["METRICS_TOKEN"].id
  secret_string_wo         = ephemeral.aws_secretsmanager_random_password.metrics_token.random_password
  secret_string_wo_version = var.secret_key_version
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id                = aws_secretsmanager_secret.app["DATABASE_URL"].id
  secret_string_wo         = "postgres://${local.db_username}:${ephemeral.aws_secretsmanager_random_password.db.random_password}@${local.db_host_port}/${local.db_name}?sslmode=require"
  secret_string_wo_version = var.db_password_version
}

resource "aws_secretsmanager_secret_version" "replica_database_urls" {
  secret_id                = aws_secretsmanager_secret.app["REPLICA_DATABASE_URLS"].id
  secret_string_wo         = "postgres://${local.db_username}:${ephemeral.aws_secretsmanager_random_password.db.random_password}@${local.replica_host}/${local.db_name}?sslmode=require"
  secret_string_wo_version = var.db_password_version
}

resource "aws_secretsmanager_secret_version" "redis_url" {
  secret_id                = aws_secretsmanager_secret.app["REDIS_URL"].id
  secret_string_wo         = "rediss://:${data.aws_secretsmanager_random_password.redis.random_password}@${local.redis_endpoint}/0"
  secret_string_wo_version = 1
}

resource "aws_secretsmanager_secret_version" "celery_broker_url" {
  secret_id                = aws_secretsmanager_secret.app["CELERY_BROKER_URL"].id
  secret_string_wo         = "rediss://:${data.aws_secretsmanager_random_password.redis.random_password}@${local.redis_endpoint}/1?ssl_cert_reqs=required"
  secret_string_wo_version = 1
}
