# catalog2vec — prod environment: lakehouse storage, IAM, an EMR Spark cluster with GPU task
# nodes, and MWAA running the daily DAG. Network (VPC, private subnets, S3 gateway endpoint) is
# an input: it usually belongs to a shared platform stack.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 6.0"
    }
  }
  # State in S3: terraform init -backend-config=backend.hcl (bucket, key, region, dynamodb_table).
  backend "s3" {}
}

provider "aws" {
  region = var.region
  default_tags {
    tags = local.tags
  }
}

locals {
  name = "catalog2vec-prod"
  tags = merge(var.tags, { project = local.name, environment = "prod" })
  art  = "s3://${module.storage.lakehouse_bucket}/artifacts"
  # `make package` output, uploaded with `aws s3 sync dist/ ${local.art}/` (docs/deploy.md)
  spark_jars = [for j in var.spark_jar_files : "${local.art}/jars/${j}"]
  # register_tables' Hive catalog is the Glue Data Catalog (EMR's client, hive-site from modules/spark_cluster)
  spark_conf = {
    "spark.sql.catalogImplementation" = "hive"
    "spark.driver.extraClassPath"     = "/usr/share/aws/hmclient/lib/*"
  }
}

data "aws_ec2_managed_prefix_list" "s3" {
  name = "com.amazonaws.${var.region}.s3"
}

module "storage" {
  source        = "../../modules/storage"
  name          = local.name
  region        = var.region
  bucket_prefix = var.bucket_prefix
  force_destroy = false
  tags          = local.tags
}

module "iam" {
  source               = "../../modules/iam"
  name                 = local.name
  region               = var.region
  lakehouse_bucket_arn = module.storage.lakehouse_bucket_arn
  logs_bucket_arn      = module.storage.logs_bucket_arn
  kms_key_arn          = module.storage.kms_key_arn
  lakehouse_prefix     = "prod"
  tags                 = local.tags
}

module "spark_cluster" {
  source                   = "../../modules/spark_cluster"
  name                     = local.name
  release_label            = var.emr_release_label
  vpc_id                   = var.vpc_id
  subnet_id                = var.private_subnet_ids[0]
  client_security_group_id = module.airflow.security_group_id
  service_role_arn         = module.iam.emr_service_role_arn
  instance_profile_arn     = module.iam.emr_instance_profile_arn
  kms_key_arn              = module.storage.kms_key_arn
  logs_bucket              = module.storage.logs_bucket
  artifacts_bucket         = module.storage.lakehouse_bucket
  lakehouse_uri            = "s3://${module.storage.lakehouse_bucket}/prod"
  core_instance_count      = 3
  gpu_instance_type        = "g5.2xlarge"
  gpu_max_instances        = 8
  termination_protection   = true
  idle_timeout_seconds     = 14400
  tags                     = local.tags
}

module "airflow" {
  source              = "../../modules/airflow"
  name                = local.name
  environment_class   = "mw1.medium"
  execution_role_arn  = module.iam.mwaa_execution_role_arn
  kms_key_arn         = module.storage.kms_key_arn
  bucket              = module.storage.lakehouse_bucket
  bucket_arn          = module.storage.lakehouse_bucket_arn
  vpc_id              = var.vpc_id
  vpc_cidr            = var.vpc_cidr
  subnet_ids          = var.private_subnet_ids
  emr_master_dns      = module.spark_cluster.master_private_dns
  lakehouse_uri       = "s3://${module.storage.lakehouse_bucket}/prod"
  config_path         = "${local.art}/conf/cluster.toml"
  jobs_dir            = "${local.art}/jobs"
  env_archive         = "${local.art}/catalog2vec-env.tar.gz"
  input_path          = var.catalog_input_path
  input_roots         = ["s3://${module.storage.lakehouse_bucket}/landing"]
  retrain_every_days  = var.retrain_every_days
  plugins_zip         = "${var.dist_dir}/mwaa/plugins.zip"
  catalog2vec_wheel   = var.catalog2vec_wheel
  spark_jars          = local.spark_jars
  spark_conf          = local.spark_conf
  gpu_pool_slots      = 8
  s3_prefix_list_id   = data.aws_ec2_managed_prefix_list.s3.id
  alert_webhook_cidrs = var.alert_webhook_cidrs
  tags                = local.tags
}
