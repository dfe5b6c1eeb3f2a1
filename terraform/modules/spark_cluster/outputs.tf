output "cluster_id" {
  description = "EMR cluster id (j-XXXX)."
  value       = aws_emr_cluster.this.id
}

output "master_private_dns" {
  description = "Private DNS name of the primary node: YARN ResourceManager and HDFS NameNode host for spark-submit."
  value       = aws_emr_cluster.this.master_public_dns
}

output "gpu_discovery_script" {
  description = "Path of the GPU discovery script on every node (spark.executor.resource.gpu.discoveryScript)."
  value       = "/opt/spark/getGpusResources.sh"
}

output "master_security_group_id" {
  description = "Security group of the primary node."
  value       = aws_security_group.master.id
}

output "glue_databases" {
  description = "The Glue databases register_tables writes into."
  value       = [for db in aws_glue_catalog_database.layers : db.name]
}
