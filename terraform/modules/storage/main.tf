# Lakehouse storage: a KMS-encrypted, versioned, private S3 bucket for the Delta tables, models,
# reports and deployment artifacts, with server access logs delivered to a separate log bucket.

data "aws_caller_identity" "current" {}

resource "aws_kms_key" "lakehouse" {
  description             = "${var.name}: lakehouse, EMR and MWAA encryption key"
  deletion_window_in_days = var.kms_deletion_window_days
  enable_key_rotation     = true
  policy                  = jsonencode(local.kms_key_policy)
  tags                    = var.tags
}

resource "aws_kms_alias" "lakehouse" {
  name          = "alias/${var.name}-lakehouse"
  target_key_id = aws_kms_key.lakehouse.key_id
}

locals {
  # A KMS *key policy* (not an IAM policy): "Resource": "*" means "this key". Key administration
  # stays with the account (IAM policies decide who administers); data-plane use is granted to the
  # pipeline roles through their own IAM policies (modules/iam), and CloudWatch Logs may use the
  # key only for the MWAA log groups of this deployment.
  kms_key_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountRootAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsUseForMwaa"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:aws:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:airflow-${var.name}-*"
          }
        }
      },
    ]
  }
}

# --- access-log bucket --------------------------------------------------------------------------

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:this is the access-log target bucket; logging it into itself would loop
  #checkov:skip=CKV_AWS_144:cross-region replication of access logs is not required (audit copy lives in CloudTrail)
  #checkov:skip=CKV_AWS_145:S3 server access log delivery supports only SSE-S3 (AES256) on the target bucket
  #checkov:skip=CKV2_AWS_62:no consumer for event notifications on access logs
  bucket        = "${var.bucket_prefix}-${var.name}-logs"
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    id     = "expire-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "S3ServerAccessLogsDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/s3-access/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs.json
}

# --- lakehouse bucket ---------------------------------------------------------------------------

resource "aws_s3_bucket" "lakehouse" {
  #checkov:skip=CKV_AWS_144:cross-region replication is an environment decision (var.replica_bucket_arn is not modelled here); Delta tables are rebuildable from bronze + versioning
  bucket        = "${var.bucket_prefix}-${var.name}-lakehouse"
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lakehouse" {
  bucket = aws_s3_bucket.lakehouse.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.lakehouse.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "lakehouse" {
  bucket = aws_s3_bucket.lakehouse.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_public_access_block" "lakehouse" {
  bucket                  = aws_s3_bucket.lakehouse.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "lakehouse" {
  bucket = aws_s3_bucket.lakehouse.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_logging" "lakehouse" {
  bucket        = aws_s3_bucket.lakehouse.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3-access/lakehouse/"
}

resource "aws_s3_bucket_lifecycle_configuration" "lakehouse" {
  bucket = aws_s3_bucket.lakehouse.id
  rule {
    # Delta keeps its own history (VACUUM retention); old S3 object versions only protect against
    # accidental deletes, so they expire after var.noncurrent_version_days.
    id     = "expire-noncurrent-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_sns_topic" "lakehouse_events" {
  name              = "${var.name}-lakehouse-events"
  kms_master_key_id = aws_kms_key.lakehouse.arn
  tags              = var.tags
}

resource "aws_s3_bucket_notification" "lakehouse" {
  # New crawled catalogs landing under landing/ are announced (e.g. to trigger an ad-hoc DAG run).
  bucket = aws_s3_bucket.lakehouse.id
  topic {
    topic_arn     = aws_sns_topic.lakehouse_events.arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = "landing/"
  }
  depends_on = [aws_sns_topic_policy.lakehouse_events]
}

data "aws_iam_policy_document" "lakehouse_events" {
  statement {
    sid       = "S3Publishes"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.lakehouse_events.arn]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.lakehouse.arn]
    }
  }
}

resource "aws_sns_topic_policy" "lakehouse_events" {
  arn    = aws_sns_topic.lakehouse_events.arn
  policy = data.aws_iam_policy_document.lakehouse_events.json
}

data "aws_iam_policy_document" "lakehouse" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.lakehouse.arn, "${aws_s3_bucket.lakehouse.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "lakehouse" {
  bucket = aws_s3_bucket.lakehouse.id
  policy = data.aws_iam_policy_document.lakehouse.json
}
