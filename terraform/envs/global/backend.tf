# Remote state: S3 with a DynamoDB lock table (see ../backend.hcl.example):
#   terraform init -backend-config=../backend.hcl
terraform {
  backend "s3" {
    key = "saas/global.tfstate"
  }
}
