# Managed Airflow (Amazon MWAA) running the catalog2vec DAG. The DAG, plugins.zip (the catalog2vec
# wheel), requirements.txt (the Spark provider, pyspark, s3fs and that wheel) and the startup script
# live under <bucket>/<airflow_prefix>/; the startup script creates the `gpu` pool, fetches the jars
# for the workers' spark-submit, points the Spark connection at the EMR cluster's YARN and sets the
# DAG's CATALOG2VEC_* deployment settings.

locals {
  # MWAA unpacks plugins.zip into /usr/local/airflow/plugins before it installs requirements.txt
  wheel_path = "/usr/local/airflow/plugins/${var.catalog2vec_wheel}"
}

resource "aws_s3_object" "plugins" {
  bucket     = var.bucket
  key        = "${var.airflow_prefix}/plugins.zip"
  source     = var.plugins_zip
  etag       = filemd5(var.plugins_zip)
  kms_key_id = var.kms_key_arn
  tags       = var.tags
}

resource "aws_s3_object" "requirements" {
  bucket     = var.bucket
  key        = "${var.airflow_prefix}/requirements.txt"
  content    = join("\n", concat(var.requirements, [local.wheel_path, ""]))
  kms_key_id = var.kms_key_arn
  tags       = var.tags
}

resource "aws_s3_object" "startup" {
  bucket = var.bucket
  key    = "${var.airflow_prefix}/startup.sh"
  content = templatefile("${path.module}/templates/startup.sh.tftpl", {
    emr_master_dns     = var.emr_master_dns
    lakehouse_uri      = var.lakehouse_uri
    config             = var.config_path
    jobs_dir           = var.jobs_dir
    env_archive        = var.env_archive
    input_path         = var.input_path
    retrain_every_days = var.retrain_every_days
    spark_jars         = join(",", var.spark_jars)
    spark_conf         = jsonencode(var.spark_conf)
    gpu_pool_slots     = var.gpu_pool_slots
    input_roots        = join(",", concat(var.input_roots, ["${var.lakehouse_uri}/landing"]))
  })
  kms_key_id = var.kms_key_arn
  tags       = var.tags
}

resource "aws_security_group" "mwaa" {
  name        = "${var.name}-mwaa"
  description = "MWAA workers and web server"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_security_group_rule" "mwaa_self" {
  description              = "MWAA components talk to each other"
  type                     = "ingress"
  from_port                = 0
  to_port                  = 0
  protocol                 = "-1"
  security_group_id        = aws_security_group.mwaa.id
  source_security_group_id = aws_security_group.mwaa.id
}

resource "aws_security_group_rule" "mwaa_egress_https" {
  description       = "HTTPS to AWS APIs (S3, SQS, Logs) through VPC endpoints/NAT"
  type              = "egress"
  from_port         = 443
  to_port           = 443
  protocol          = "tcp"
  security_group_id = aws_security_group.mwaa.id
  cidr_blocks       = [var.vpc_cidr]
}

resource "aws_security_group_rule" "mwaa_egress_s3" {
  description       = "HTTPS to S3 through the gateway endpoint (DAGs, plugins, artifacts, models/LATEST)"
  type              = "egress"
  from_port         = 443
  to_port           = 443
  protocol          = "tcp"
  security_group_id = aws_security_group.mwaa.id
  prefix_list_ids   = [var.s3_prefix_list_id]
}

resource "aws_security_group_rule" "mwaa_egress_webhook" {
  count             = length(var.alert_webhook_cidrs) > 0 ? 1 : 0
  description       = "HTTPS to the alert webhook (catalog2vec_alerts connection)"
  type              = "egress"
  from_port         = 443
  to_port           = 443
  protocol          = "tcp"
  security_group_id = aws_security_group.mwaa.id
  cidr_blocks       = var.alert_webhook_cidrs
}

resource "aws_security_group_rule" "mwaa_egress_vpc" {
  description       = "spark-submit to the EMR cluster (YARN, HDFS) and the metadata database inside the VPC"
  type              = "egress"
  from_port         = 0
  to_port           = 65535
  protocol          = "tcp"
  security_group_id = aws_security_group.mwaa.id
  cidr_blocks       = [var.vpc_cidr]
}

resource "aws_mwaa_environment" "this" {
  name                             = var.name
  airflow_version                  = var.airflow_version
  environment_class                = var.environment_class
  min_workers                      = var.min_workers
  max_workers                      = var.max_workers
  execution_role_arn               = var.execution_role_arn
  kms_key                          = var.kms_key_arn
  source_bucket_arn                = var.bucket_arn
  dag_s3_path                      = "${var.airflow_prefix}/dags"
  plugins_s3_path                  = aws_s3_object.plugins.key
  plugins_s3_object_version        = aws_s3_object.plugins.version_id
  requirements_s3_path             = aws_s3_object.requirements.key
  startup_script_s3_path           = aws_s3_object.startup.key
  requirements_s3_object_version   = aws_s3_object.requirements.version_id
  startup_script_s3_object_version = aws_s3_object.startup.version_id
  webserver_access_mode            = "PRIVATE_ONLY"

  airflow_configuration_options = {
    "core.load_examples"                 = "False"
    "core.default_task_retries"          = "3"
    "scheduler.catchup_by_default"       = "False"
    "webserver.warn_deployment_exposure" = "False"
  }

  network_configuration {
    security_group_ids = [aws_security_group.mwaa.id]
    subnet_ids         = var.subnet_ids
  }

  logging_configuration {
    dag_processing_logs {
      enabled   = true
      log_level = "INFO"
    }
    scheduler_logs {
      enabled   = true
      log_level = "INFO"
    }
    task_logs {
      enabled   = true
      log_level = "INFO"
    }
    webserver_logs {
      enabled   = true
      log_level = "WARNING"
    }
    worker_logs {
      enabled   = true
      log_level = "INFO"
    }
  }

  tags = var.tags
}
