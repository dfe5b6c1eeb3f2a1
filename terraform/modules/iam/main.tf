# Least-privilege roles: the EMR service role, the EMR node (EC2 instance profile) role that the
# Spark jobs run as, and the MWAA execution role. Data access is limited to the environment's
# prefix of the lakehouse bucket, artifacts are read-only, and KMS use goes through S3/SQS/Logs.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  data_arn  = "${var.lakehouse_bucket_arn}/${var.lakehouse_prefix}"
  art_arn   = "${var.lakehouse_bucket_arn}/${var.artifacts_prefix}"
  air_arn   = "${var.lakehouse_bucket_arn}/${var.airflow_prefix}"
}

# --- EMR service role ---------------------------------------------------------------------------

data "aws_iam_policy_document" "emr_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["elasticmapreduce.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "emr_service" {
  name               = "${var.name}-emr-service"
  assume_role_policy = data.aws_iam_policy_document.emr_assume.json
  tags               = var.tags
}

# AWS's v2 EMR service policy only acts on resources tagged for-use-with-amazon-emr-managed-policies=true.
resource "aws_iam_role_policy_attachment" "emr_service" {
  role       = aws_iam_role.emr_service.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2"
}

data "aws_iam_policy_document" "emr_pass_node_role" {
  statement {
    sid       = "PassOnlyTheNodeRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.emr_node.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "emr_pass_node_role" {
  name   = "pass-node-role"
  role   = aws_iam_role.emr_service.id
  policy = data.aws_iam_policy_document.emr_pass_node_role.json
}

# --- EMR node role: what the Spark jobs can touch -----------------------------------------------

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "emr_node" {
  name               = "${var.name}-emr-node"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
  tags               = var.tags
}

resource "aws_iam_instance_profile" "emr_node" {
  name = "${var.name}-emr-node"
  role = aws_iam_role.emr_node.name
  tags = var.tags
}

data "aws_iam_policy_document" "emr_node" {
  statement {
    sid       = "ListOwnPrefixes"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [var.lakehouse_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.lakehouse_prefix}", "${var.lakehouse_prefix}/*", "${var.artifacts_prefix}/*"]
    }
  }
  statement {
    sid       = "ReadWriteLakehouseData"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${local.data_arn}/*"]
  }
  statement {
    sid       = "ReadArtifacts"
    actions   = ["s3:GetObject"]
    resources = ["${local.art_arn}/*"]
  }
  statement {
    sid       = "WriteEmrLogs"
    actions   = ["s3:PutObject"]
    resources = ["${var.logs_bucket_arn}/emr/*"]
  }
  statement {
    # register_tables: the EXTERNAL tables and *_latest views live in the Glue Data Catalog
    sid = "RegisterTablesInGlue"
    actions = ["glue:GetDatabase", "glue:GetDatabases", "glue:CreateDatabase", "glue:GetTable", "glue:GetTables",
      "glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable", "glue:GetPartitions", "glue:GetUserDefinedFunctions",
    "glue:BatchGetPartition"]
    resources = [
      "arn:${local.partition}:glue:${var.region}:${local.account}:catalog",
      "arn:${local.partition}:glue:${var.region}:${local.account}:database/${var.glue_database_prefix}_*",
      "arn:${local.partition}:glue:${var.region}:${local.account}:table/${var.glue_database_prefix}_*/*",
      "arn:${local.partition}:glue:${var.region}:${local.account}:database/default",
    ]
  }
  statement {
    sid       = "UseLakehouseKeyThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:DescribeKey"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com", "ec2.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "emr_node" {
  name   = "lakehouse-access"
  role   = aws_iam_role.emr_node.id
  policy = data.aws_iam_policy_document.emr_node.json
}

# --- MWAA execution role ------------------------------------------------------------------------

data "aws_iam_policy_document" "mwaa_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "mwaa" {
  name               = "${var.name}-mwaa-execution"
  assume_role_policy = data.aws_iam_policy_document.mwaa_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "mwaa" {
  statement {
    sid       = "PublishMetrics"
    actions   = ["airflow:PublishMetrics"]
    resources = ["arn:${local.partition}:airflow:${var.region}:${local.account}:environment/${var.name}"]
  }
  statement {
    sid       = "ReadDagsAndArtifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${local.air_arn}/*", "${local.art_arn}/*"]
  }
  statement {
    # resolve_model and retrain_due read <prefix>/models/LATEST and the model cards from the worker
    sid       = "ReadPublishedModels"
    actions   = ["s3:GetObject"]
    resources = ["${local.data_arn}/models/*"]
  }
  statement {
    sid       = "ListDagBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketPublicAccessBlock", "s3:GetEncryptionConfiguration"]
    resources = [var.lakehouse_bucket_arn]
  }
  statement {
    sid = "OwnLogGroups"
    actions = ["logs:CreateLogStream", "logs:CreateLogGroup", "logs:PutLogEvents", "logs:GetLogEvents",
    "logs:GetLogRecord", "logs:GetLogGroupFields", "logs:GetQueryResults"]
    resources = ["arn:${local.partition}:logs:${var.region}:${local.account}:log-group:airflow-${var.name}-*"]
  }
  statement {
    sid       = "DescribeLogGroups"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${var.region}:${local.account}:log-group:*"]
  }
  statement {
    sid       = "CeleryQueues"
    actions   = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:SendMessage"]
    resources = ["arn:${local.partition}:sqs:${var.region}:*:airflow-celery-*"]
  }
  statement {
    sid       = "KeyThroughSqsAndS3"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*", "kms:Encrypt"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringLike"
      variable = "kms:ViaService"
      values   = ["sqs.${var.region}.amazonaws.com", "s3.${var.region}.amazonaws.com"]
    }
  }
  statement {
    sid       = "FindTheSparkCluster"
    actions   = ["elasticmapreduce:DescribeCluster", "elasticmapreduce:ListInstances"]
    resources = ["arn:${local.partition}:elasticmapreduce:${var.region}:${local.account}:cluster/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/project"
      values   = [var.name]
    }
  }
}

resource "aws_iam_role_policy" "mwaa" {
  name   = "mwaa-execution"
  role   = aws_iam_role.mwaa.id
  policy = data.aws_iam_policy_document.mwaa.json
}
