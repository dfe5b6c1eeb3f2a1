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
  description = "Crawled catalog the daily run ingests (e.g. s3://bucket/landing/catalog/*.json)."
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
