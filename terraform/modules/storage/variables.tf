variable "name" {
  description = "Deployment name (e.g. catalog2vec-dev); prefixes every resource name."
  type        = string
}

variable "region" {
  description = "AWS region of the deployment (used in the KMS key policy for CloudWatch Logs)."
  type        = string
}

variable "bucket_prefix" {
  description = "Globally unique prefix for the S3 bucket names (e.g. the organisation name)."
  type        = string
}

variable "force_destroy" {
  description = "Allow terraform destroy to delete non-empty buckets (true only for throw-away dev stacks)."
  type        = bool
  default     = false
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the KMS key is deleted after a destroy (7-30 days)."
  type        = number
  default     = 30
}

variable "noncurrent_version_days" {
  description = "Days an overwritten/deleted lakehouse object version is kept before it expires."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Days the S3 server access logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags applied to every resource of the module."
  type        = map(string)
  default     = {}
}
