variable "name" {
  description = "Deployment name; the cluster name and the `project` tag the Airflow role may describe."
  type        = string
}

variable "release_label" {
  description = "EMR release providing Hadoop/YARN on Java 17 (e.g. emr-7.5.0); Spark itself comes from the env archive."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cluster."
  type        = string
}

variable "subnet_id" {
  description = "Private subnet for the cluster nodes (needs S3 access via a gateway endpoint or NAT)."
  type        = string
}

variable "client_security_group_id" {
  description = "Security group of the spark-submit clients (the MWAA workers) allowed to reach YARN/HDFS."
  type        = string
}

variable "service_role_arn" {
  description = "EMR service role ARN (modules/iam output emr_service_role_arn)."
  type        = string
}

variable "instance_profile_arn" {
  description = "Instance profile of the nodes (modules/iam output emr_instance_profile_arn)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for EMR local disks, EBS, S3 writes and logs."
  type        = string
}

variable "logs_bucket" {
  description = "Bucket receiving the EMR logs under emr/."
  type        = string
}

variable "artifacts_bucket" {
  description = "Bucket holding the bootstrap action and GPU discovery script (the lakehouse bucket)."
  type        = string
}

variable "artifacts_prefix" {
  description = "Key prefix for deployment artifacts inside artifacts_bucket."
  type        = string
  default     = "artifacts"
}

variable "in_transit_certificates_s3_uri" {
  description = "S3 URI of a zip of PEM certificates enabling EMR in-transit TLS ('' = at-rest encryption only)."
  type        = string
  default     = ""
}

variable "master_instance_type" {
  description = "Instance type of the primary node (YARN ResourceManager, HDFS NameNode)."
  type        = string
  default     = "m6i.xlarge"
}

variable "core_instance_type" {
  description = "Instance type of the CPU core nodes (HDFS, Spark drivers, CPU stages)."
  type        = string
  default     = "m6i.2xlarge"
}

variable "core_instance_count" {
  description = "Number of CPU core nodes."
  type        = number
  default     = 2
}

variable "core_ebs_size_gb" {
  description = "EBS gp3 volume size per core node, GiB."
  type        = number
  default     = 256
}

variable "gpu_instance_type" {
  description = "Instance type of the GPU task nodes (one or more NVIDIA GPUs each, e.g. g5.xlarge / p4d.24xlarge)."
  type        = string
  default     = "g5.xlarge"
}

variable "gpu_instance_count" {
  description = "Initial number of GPU task nodes (0 = none until managed scaling adds them)."
  type        = number
  default     = 0
}

variable "gpu_max_instances" {
  description = "Upper bound of GPU task nodes managed scaling may add."
  type        = number
  default     = 4
}

variable "gpu_spot_bid_price" {
  description = "Spot bid price for the GPU task group in USD ('' = on-demand)."
  type        = string
  default     = ""
}

variable "gpu_ebs_size_gb" {
  description = "EBS gp3 volume size per GPU node, GiB (image cache, shuffle)."
  type        = number
  default     = 200
}

variable "termination_protection" {
  description = "Protect the cluster from accidental termination."
  type        = bool
  default     = true
}

variable "idle_timeout_seconds" {
  description = "Terminate the cluster after this many idle seconds (EMR auto-termination)."
  type        = number
  default     = 14400
}

variable "tags" {
  description = "Tags applied to every resource of the module."
  type        = map(string)
  default     = {}
}

variable "glue_database_prefix" {
  description = "Prefix of the Glue databases (<prefix>_<layer>), the metastore.database_prefix of the run configuration."
  type        = string
  default     = "catalog2vec"
}

variable "glue_layers" {
  description = "Lakehouse layers that get a Glue database."
  type        = list(string)
  default     = ["bronze", "silver", "gold"]
}

variable "lakehouse_uri" {
  description = "Lakehouse root (s3://bucket/prefix); each Glue database's location is <root>/<layer>."
  type        = string
}
