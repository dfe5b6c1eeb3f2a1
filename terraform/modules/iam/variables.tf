variable "name" {
  description = "Deployment name (e.g. catalog2vec-dev); prefixes the role names."
  type        = string
}

variable "region" {
  description = "AWS region of the deployment."
  type        = string
}

variable "lakehouse_bucket_arn" {
  description = "ARN of the lakehouse bucket (modules/storage output lakehouse_bucket_arn)."
  type        = string
}

variable "logs_bucket_arn" {
  description = "ARN of the log bucket; EMR writes under emr/."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the KMS key encrypting the buckets, EMR and MWAA."
  type        = string
}

variable "lakehouse_prefix" {
  description = "Key prefix of this environment's lakehouse inside the bucket (e.g. dev); the jobs read/write only here."
  type        = string
}

variable "artifacts_prefix" {
  description = "Key prefix holding the wheel, the env archive and jobs/*.py (read-only for the cluster)."
  type        = string
  default     = "artifacts"
}

variable "airflow_prefix" {
  description = "Key prefix holding the MWAA dags/, requirements.txt and startup.sh."
  type        = string
  default     = "airflow"
}

variable "tags" {
  description = "Tags applied to every resource of the module."
  type        = map(string)
  default     = {}
}

variable "glue_database_prefix" {
  description = "Prefix of the Glue databases register_tables writes (<prefix>_bronze|silver|gold); the EMR nodes may manage their tables."
  type        = string
  default     = "catalog2vec"
}
