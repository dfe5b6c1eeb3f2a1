variable "region" {
  description = "AWS region of the environment."
  type        = string
  default     = "eu-west-1"
}

variable "bucket_prefix" {
  description = "Globally unique prefix for the bucket names (e.g. your organisation)."
  type        = string
}

variable "vpc_id" {
  description = "VPC hosting EMR and MWAA."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC (MWAA egress is limited to it)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Two private subnets in different AZs (MWAA needs two; EMR uses the first)."
  type        = list(string)
}

variable "emr_release_label" {
  description = "EMR release providing Hadoop/YARN on Java 17; Spark 4.2 comes from the env archive."
  type        = string
  default     = "emr-7.5.0"
}

variable "catalog_input_path" {
  description = "Crawled catalog the daily run ingests (under s3://<bucket>/landing/, e.g. s3://bucket/landing/catalog/*.json: the DAG accepts inputs under CATALOG2VEC_INPUT_ROOTS only)."
  type        = string
}

variable "retrain_every_days" {
  description = "Image model and CTR trees retrain cadence in days (embedding and LR run daily)."
  type        = number
  default     = 7
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

variable "dist_dir" {
  description = "The `make package` output directory (dist/: mwaa/plugins.zip, jars/, jobs/, conf/, the env archive)."
  type        = string
  default     = "../../../dist"
}

variable "catalog2vec_wheel" {
  description = "File name of the catalog2vec wheel `make package` built (dist/catalog2vec-<version>-py3-none-any.whl), installed on the MWAA workers from plugins.zip."
  type        = string
}

variable "spark_jar_files" {
  description = "The jars of dist/jars/jars.txt (`make package`), uploaded under <artifacts>/jars/ and passed to every job with --jars."
  type        = list(string)
  default = [
    "delta-spark_4.2_2.13-4.4.0.jar",
    "hadoop-aws-3.5.0.jar",
    "delta-storage-4.4.0.jar",
    "delta-kernel-api-4.4.0.jar",
    "delta-kernel-defaults-4.4.0.jar",
    "delta-kernel-unitycatalog-4.4.0.jar",
    "unitycatalog-client-0.6.0.jar",
    "unitycatalog-hadoop-0.6.0.jar",
    "jackson-datatype-jdk8-2.13.5.jar",
    "shims-0.9.25.jar",
    "javax.annotation-api-1.3.2.jar",
    "commons-logging-1.3.0.jar",
    "bundle-2.35.4.jar",
    "analyticsaccelerator-s3-1.3.1.jar",
    "wildfly-openssl-2.2.5.Final.jar",
  ]
}

variable "alert_webhook_cidrs" {
  description = "CIDRs of the alert webhook the MWAA workers post to over HTTPS ([] = none)."
  type        = list(string)
  default     = []
}
