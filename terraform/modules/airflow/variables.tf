variable "name" {
  description = "MWAA environment name (also the log-group prefix airflow-<name>-*)."
  type        = string
}

variable "airflow_version" {
  description = "MWAA Airflow version: the DAG needs >= 3.1 (DeadlineAlert); the version of requirements/airflow.lock, which the tests install."
  type        = string
  default     = "3.3.2"
}

variable "environment_class" {
  description = "MWAA environment class (mw1.small, mw1.medium, mw1.large ...)."
  type        = string
  default     = "mw1.small"
}

variable "min_workers" {
  description = "Minimum number of MWAA workers."
  type        = number
  default     = 1
}

variable "max_workers" {
  description = "Maximum number of MWAA workers."
  type        = number
  default     = 4
}

variable "execution_role_arn" {
  description = "MWAA execution role (modules/iam output mwaa_execution_role_arn)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key encrypting the MWAA environment and its S3 objects."
  type        = string
}

variable "bucket" {
  description = "Bucket name holding the MWAA dags/, requirements.txt and startup.sh."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the same bucket (MWAA source_bucket_arn)."
  type        = string
}

variable "airflow_prefix" {
  description = "Key prefix of the MWAA files inside the bucket."
  type        = string
  default     = "airflow"
}

variable "requirements" {
  description = "Python requirements of the MWAA workers besides the catalog2vec wheel (pins of requirements/airflow.lock): the Spark provider, pyspark's spark-submit, s3fs for resolve_model."
  type        = list(string)
  default     = ["apache-airflow-providers-apache-spark==6.3.4", "pyspark==4.2.0", "s3fs==2026.9.0"]
}

variable "plugins_zip" {
  description = "Local path of dist/mwaa/plugins.zip from `make package` (holds the catalog2vec wheel the DAG imports)."
  type        = string
}

variable "catalog2vec_wheel" {
  description = "File name of the catalog2vec wheel inside plugins.zip (dist/catalog2vec-<version>-py3-none-any.whl)."
  type        = string
}

variable "spark_jars" {
  description = "Jar URIs every job is submitted with (--jars): dist/jars/ of `make package` uploaded to the artifacts prefix."
  type        = list(string)
}

variable "spark_conf" {
  description = "Spark conf of every job (CATALOG2VEC_SPARK_CONF), e.g. the Hive catalog of the Glue metastore."
  type        = map(string)
  default     = {}
}

variable "gpu_pool_slots" {
  description = "Slots of the Airflow pool `gpu` (train, embed): at most this many GPU jobs at once."
  type        = number
  default     = 2
}

variable "s3_prefix_list_id" {
  description = "Managed prefix list of the S3 gateway endpoint (com.amazonaws.<region>.s3): MWAA egress to S3."
  type        = string
}

variable "alert_webhook_cidrs" {
  description = "CIDRs of the alert webhook (HTTPS) the catalog2vec_alerts connection posts to ([] = no alert egress)."
  type        = list(string)
  default     = []
}

variable "vpc_id" {
  description = "VPC of the MWAA environment (the same VPC as the EMR cluster)."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC; MWAA egress is limited to it (VPC endpoints / NAT, EMR)."
  type        = string
}

variable "subnet_ids" {
  description = "Two private subnets in different availability zones for MWAA."
  type        = list(string)
}

variable "emr_master_dns" {
  description = "Private DNS of the EMR primary node (YARN ResourceManager) the Spark connection points at."
  type        = string
}

variable "lakehouse_uri" {
  description = "Lakehouse root passed to every job (e.g. s3://bucket/prod); the DAG param `lakehouse` default."
  type        = string
}

variable "config_path" {
  description = "Run configuration passed as --config (shipped with the jobs, e.g. s3://bucket/artifacts/conf/cluster.toml)."
  type        = string
}

variable "jobs_dir" {
  description = "URI of the uploaded jobs/ directory (jobs/*.py and jobs/_common.py)."
  type        = string
}

variable "env_archive" {
  description = "URI of the venv-pack archive built by `make package` (shipped with --archives ...#environment)."
  type        = string
}

variable "input_path" {
  description = "Crawled catalog the daily run ingests (file, glob or URI); the DAG param `input_path` default."
  type        = string
}

variable "retrain_every_days" {
  description = "Retrain the image model and CTR trees when the newest model is this many days old."
  type        = number
  default     = 7
}

variable "tags" {
  description = "Tags applied to every resource of the module."
  type        = map(string)
  default     = {}
}

variable "input_roots" {
  description = "Where a run may read its catalog and impression log from besides <lakehouse>/landing (CATALOG2VEC_INPUT_ROOTS; input_path must lie under one)."
  type        = list(string)
  default     = []
}
