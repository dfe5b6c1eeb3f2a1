output "lakehouse_uri" {
  description = "Lakehouse root of this environment (the jobs' --lakehouse)."
  value       = module.airflow.lakehouse_uri
}

output "artifacts_uri" {
  description = "Where `make package` artifacts (wheel, env archive, jobs/, conf/) are uploaded."
  value       = local.art
}

output "emr_cluster_id" {
  description = "EMR cluster id."
  value       = module.spark_cluster.cluster_id
}

output "emr_master_dns" {
  description = "YARN ResourceManager host."
  value       = module.spark_cluster.master_private_dns
}

output "airflow_webserver_url" {
  description = "Airflow UI (private)."
  value       = module.airflow.webserver_url
}

output "dags_s3_uri" {
  description = "Upload pipelines/airflow/catalog2vec_dag.py here."
  value       = module.airflow.dags_s3_uri
}

output "kms_key_arn" {
  description = "KMS key of the environment."
  value       = module.storage.kms_key_arn
}
