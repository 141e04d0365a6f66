# Remote state: S3 with a DynamoDB lock table, configured at init time:
#   terraform init -backend-config=../backend.hcl
# (see backend.hcl.example and README.md). One workspace per region code keeps
# each region's state under its own key. Tests replace this with local state.
terraform {
  backend "s3" {
    key = "saas/region.tfstate"
  }
}
