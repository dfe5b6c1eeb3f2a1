output "emr_service_role_arn" {
  description = "ARN of the EMR service role (aws_emr_cluster.service_role)."
  value       = aws_iam_role.emr_service.arn
}

output "emr_node_role_arn" {
  description = "ARN of the role the EMR nodes (and therefore the Spark jobs) run as."
  value       = aws_iam_role.emr_node.arn
}

output "emr_instance_profile_arn" {
  description = "ARN of the EC2 instance profile of the EMR nodes (aws_emr_cluster.ec2_attributes)."
  value       = aws_iam_instance_profile.emr_node.arn
}

output "mwaa_execution_role_arn" {
  description = "ARN of the MWAA execution role."
  value       = aws_iam_role.mwaa.arn
}
