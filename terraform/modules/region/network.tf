# VPC over var.az_count availability zones: public subnets (ALB, NAT gateways)
# and private subnets (ECS tasks, RDS, Redis), one NAT gateway per zone.

resource "aws_vpc" "this" {
  #checkov:skip=CKV2_AWS_11:flow logs are enabled by module.flow_logs (modules/flow_logs), which the graph check does not follow
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = local.name }

  depends_on = [terraform_data.residency_guard]
}

# The default security group allows nothing.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
}

resource "aws_subnet" "public" {
  count = var.az_count

  vpc_id                  = aws_vpc.this.id
  availability_zone       = local.azs[count.index]
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, count.index)
  map_public_ip_on_launch = false

  tags = { Name = "${local.name}-public-${local.azs[count.index]}", Tier = "public" }
}

resource "aws_subnet" "private" {
  count = var.az_count

  vpc_id            = aws_vpc.this.id
  availability_zone = local.azs[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, 100 + count.index)

  tags = { Name = "${local.name}-private-${local.azs[count.index]}", Tier = "private" }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = local.name }
}

resource "aws_eip" "nat" {
  count  = var.az_count
  domain = "vpc"
  tags   = { Name = "${local.name}-nat-${local.azs[count.index]}" }
}

resource "aws_nat_gateway" "this" {
  count = var.az_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
  tags          = { Name = "${local.name}-${local.azs[count.index]}" }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${local.name}-public" }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count = var.az_count

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "private" {
  count = var.az_count

  vpc_id = aws_vpc.this.id
  tags   = { Name = "${local.name}-private-${local.azs[count.index]}" }
}

resource "aws_route" "private_nat" {
  count = var.az_count

  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[count.index].id
}

resource "aws_route_table_association" "private" {
  count = var.az_count

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# ---------------------------------------------------------------- flow logs
module "flow_logs" {
  source = "../flow_logs"

  name           = "${var.name_prefix}/${local.code}"
  vpc_id         = aws_vpc.this.id
  kms_key_arn    = module.kms.arn
  retention_days = var.log_retention_days
}

# ---------------------------------------------------------------- security groups
# Standalone rules only (mixing them with inline rules drifts on every plan).
# Traffic: internet -443-> ALB -8000-> web; web, worker, beat -> RDS 5432,
# Redis 6379 and HTTPS 443 (AWS APIs through NAT, peer regions).

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "Public HTTPS load balancer of ${local.code}"
  vpc_id      = aws_vpc.this.id
}

resource "aws_security_group" "app" {
  #checkov:skip=CKV2_AWS_5:attached to the ECS services by for_each key (compute.tf), which checkov cannot follow
  for_each = toset(["web", "worker", "beat"])

  name        = "${local.name}-${each.key}"
  description = "ECS ${each.key} tasks of ${local.code}"
  vpc_id      = aws_vpc.this.id
}

resource "aws_security_group" "db" {
  name        = "${local.name}-db"
  description = "PostgreSQL of ${local.code}, reachable from the app tasks only"
  vpc_id      = aws_vpc.this.id
}

resource "aws_security_group" "redis" {
  name        = "${local.name}-redis"
  description = "Redis of ${local.code}, reachable from the app tasks only"
  vpc_id      = aws_vpc.this.id
}

resource "aws_security_group_rule" "alb_in_https" {
  type              = "ingress"
  description       = "HTTPS from the internet"
  security_group_id = aws_security_group.alb.id
  protocol          = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_blocks       = ["0.0.0.0/0"]
}

resource "aws_security_group_rule" "alb_out_web" {
  type                     = "egress"
  description              = "To the web tasks"
  security_group_id        = aws_security_group.alb.id
  protocol                 = "tcp"
  from_port                = 8000
  to_port                  = 8000
  source_security_group_id = aws_security_group.app["web"].id
}

resource "aws_security_group_rule" "web_in_alb" {
  type                     = "ingress"
  description              = "From the load balancer"
  security_group_id        = aws_security_group.app["web"].id
  protocol                 = "tcp"
  from_port                = 8000
  to_port                  = 8000
  source_security_group_id = aws_security_group.alb.id
}

resource "aws_security_group_rule" "app_out_db" {
  for_each = aws_security_group.app

  type                     = "egress"
  description              = "To PostgreSQL"
  security_group_id        = each.value.id
  protocol                 = "tcp"
  from_port                = 5432
  to_port                  = 5432
  source_security_group_id = aws_security_group.db.id
}

resource "aws_security_group_rule" "app_out_redis" {
  for_each = aws_security_group.app

  type                     = "egress"
  description              = "To Redis"
  security_group_id        = each.value.id
  protocol                 = "tcp"
  from_port                = 6379
  to_port                  = 6379
  source_security_group_id = aws_security_group.redis.id
}

resource "aws_security_group_rule" "app_out_https" {
  for_each = aws_security_group.app

  type              = "egress"
  description       = "HTTPS to AWS APIs (through NAT) and peer regions"
  security_group_id = each.value.id
  protocol          = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_blocks       = ["0.0.0.0/0"]
}

resource "aws_security_group_rule" "db_in_app" {
  for_each = aws_security_group.app

  type                     = "ingress"
  description              = "PostgreSQL from ${each.key} tasks"
  security_group_id        = aws_security_group.db.id
  protocol                 = "tcp"
  from_port                = 5432
  to_port                  = 5432
  source_security_group_id = each.value.id
}

resource "aws_security_group_rule" "redis_in_app" {
  for_each = aws_security_group.app

  type                     = "ingress"
  description              = "Redis from ${each.key} tasks"
  security_group_id        = aws_security_group.redis.id
  protocol                 = "tcp"
  from_port                = 6379
  to_port                  = 6379
  source_security_group_id = each.value.id
}
