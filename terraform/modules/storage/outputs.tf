output "lakehouse_bucket" {
  description = "Name of the lakehouse bucket; the lakehouse root is s3://<name>/<environment>."
  value       = aws_s3_bucket.lakehouse.bucket
}

output "lakehouse_bucket_arn" {
  description = "ARN of the lakehouse bucket (for IAM policies)."
  value       = aws_s3_bucket.lakehouse.arn
}

output "logs_bucket" {
  description = "Name of the bucket receiving S3 access logs and EMR logs."
  value       = aws_s3_bucket.logs.bucket
}

output "logs_bucket_arn" {
  description = "ARN of the log bucket (for IAM policies)."
  value       = aws_s3_bucket.logs.arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the lakehouse, EMR disks/S3 writes and MWAA."
  value       = aws_kms_key.lakehouse.arn
}

output "events_topic_arn" {
  description = "SNS topic announcing new objects under landing/ in the lakehouse bucket."
  value       = aws_sns_topic.lakehouse_events.arn
}
