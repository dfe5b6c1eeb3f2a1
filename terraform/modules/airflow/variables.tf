variable "name" {
  description = "MWAA environment name (also the log-group prefix airflow-<name>-*)."
  type        = string
}

variable "airflow_version" {
  description = "MWAA Airflow version; the DAG uses the Airflow 3 task SDK, so a 3.x version is required."
  type        = string
  default     = "3.0.6"
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
  description = "Python requirements installed on the MWAA workers (the Spark provider and the pyspark client)."
  type        = list(string)
  default     = ["apache-airflow-providers-apache-spark==6.3.4", "pyspark==4.2.0"]
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
