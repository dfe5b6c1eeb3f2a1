output "environment_arn" {
  description = "ARN of the MWAA environment."
  value       = aws_mwaa_environment.this.arn
}

output "webserver_url" {
  description = "URL of the (private) Airflow UI."
  value       = aws_mwaa_environment.this.webserver_url
}

output "dags_s3_uri" {
  description = "Where to upload pipelines/airflow/catalog2vec_dag.py."
  value       = "s3://${var.bucket}/${var.airflow_prefix}/dags/"
}

output "security_group_id" {
  description = "Security group of the MWAA workers (allowed into the EMR primary node)."
  value       = aws_security_group.mwaa.id
}

output "lakehouse_uri" {
  description = "Lakehouse root the DAG uses by default."
  value       = var.lakehouse_uri
}
