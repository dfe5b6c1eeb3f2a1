# Spark cluster on Amazon EMR: YARN with CPU core nodes (HDFS, drivers, CPU stages) and an
# autoscaled GPU task group (training and embedding). The Spark jobs are submitted with the
# Spark 4.2 client from the packaged environment (pip pyspark), which ships its own jars to YARN,
# so the EMR release only has to provide Hadoop/YARN on Java 17.

locals {
  yarn_gpu_configurations = [
    {
      Classification = "yarn-site"
      Properties = {
        "yarn.nodemanager.resource-plugins"                                   = "yarn.io/gpu"
        "yarn.resource-types"                                                 = "yarn.io/gpu"
        "yarn.nodemanager.resource-plugins.gpu.allowed-gpu-devices"           = "auto"
        "yarn.nodemanager.resource-plugins.gpu.path-to-discovery-executables" = "/usr/bin"
        "yarn.nodemanager.linux-container-executor.cgroups.mount"             = "true"
        "yarn.nodemanager.linux-container-executor.cgroups.mount-path"        = "/sys/fs/cgroup"
        "yarn.nodemanager.linux-container-executor.cgroups.hierarchy"         = "yarn"
        "yarn.nodemanager.container-executor.class"                           = "org.apache.hadoop.yarn.server.nodemanager.LinuxContainerExecutor"
      }
    },
    {
      Classification = "container-executor"
      Configurations = [
        { Classification = "gpu", Properties = { "module.enabled" = "true" } },
        { Classification = "cgroups", Properties = { "root" = "/sys/fs/cgroup", "yarn-hierarchy" = "yarn" } },
      ]
      Properties = {}
    },
    {
      # the cluster's Hive metastore is the AWS Glue Data Catalog (hive-site.xml on every node), so
      # register_tables (metastore.kind = "session", spark.sql.catalogImplementation=hive) registers
      # into a catalog that outlives the job
      Classification = "spark-hive-site"
      Properties = {
        "hive.metastore.client.factory.class" = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
      }
    },
    {
      Classification = "hive-site"
      Properties = {
        "hive.metastore.client.factory.class" = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
      }
    },
    {
      Classification = "capacity-scheduler"
      Properties = {
        "yarn.scheduler.capacity.resource-calculator" = "org.apache.hadoop.yarn.util.resource.DominantResourceCalculator"
      }
    },
  ]
}

resource "aws_s3_object" "gpu_discovery" {
  bucket     = var.artifacts_bucket
  key        = "${var.artifacts_prefix}/emr/getGpusResources.sh"
  source     = "${path.module}/files/getGpusResources.sh"
  kms_key_id = var.kms_key_arn
  tags       = var.tags
}

resource "aws_s3_object" "bootstrap" {
  bucket     = var.artifacts_bucket
  key        = "${var.artifacts_prefix}/emr/bootstrap.sh"
  source     = "${path.module}/files/bootstrap.sh"
  kms_key_id = var.kms_key_arn
  tags       = var.tags
}

resource "aws_emr_security_configuration" "this" {
  name          = "${var.name}-encryption"
  configuration = <<-JSON
    {
      "EncryptionConfiguration": {
        "EnableAtRestEncryption": true,
        "AtRestEncryptionConfiguration": {
          "S3EncryptionConfiguration": {
            "EncryptionMode": "SSE-KMS",
            "AwsKmsKey": "${var.kms_key_arn}"
          },
          "LocalDiskEncryptionConfiguration": {
            "EncryptionKeyProviderType": "AwsKms",
            "AwsKmsKey": "${var.kms_key_arn}",
            "EnableEbsEncryption": true
          }
        },
    %{~if var.in_transit_certificates_s3_uri != ""}
        "EnableInTransitEncryption": true,
        "InTransitEncryptionConfiguration": {
          "TLSCertificateConfiguration": {
            "CertificateProviderType": "PEM",
            "S3Object": "${var.in_transit_certificates_s3_uri}"
          }
        }
    %{~else}
        "EnableInTransitEncryption": false
    %{~endif}
      },
      "InstanceMetadataServiceConfiguration": {
        "MinimumInstanceMetadataServiceVersion": 2,
        "HttpPutResponseHopLimit": 1
      }
    }
  JSON
}

# EMR-managed security groups: EMR adds the rules it needs between its own groups; nothing is
# opened to the internet.
resource "aws_security_group" "master" {
  name                   = "${var.name}-emr-master"
  description            = "EMR primary node (managed by EMR; no public ingress)"
  vpc_id                 = var.vpc_id
  revoke_rules_on_delete = true
  tags                   = var.tags
}

resource "aws_security_group" "worker" {
  name                   = "${var.name}-emr-worker"
  description            = "EMR core and task nodes (managed by EMR; no public ingress)"
  vpc_id                 = var.vpc_id
  revoke_rules_on_delete = true
  tags                   = var.tags
}

resource "aws_security_group" "service" {
  name                   = "${var.name}-emr-service-access"
  description            = "EMR service access for clusters in private subnets"
  vpc_id                 = var.vpc_id
  revoke_rules_on_delete = true
  tags                   = var.tags
}

resource "aws_security_group_rule" "submit_from_airflow" {
  for_each                 = toset(["8032", "8088", "8020", "9866", "10020", "19888"])
  description              = "Airflow workers submit to YARN / read HDFS (port ${each.value})"
  type                     = "ingress"
  from_port                = tonumber(each.value)
  to_port                  = tonumber(each.value)
  protocol                 = "tcp"
  security_group_id        = aws_security_group.master.id
  source_security_group_id = var.client_security_group_id
}

resource "aws_emr_cluster" "this" {
  #checkov:skip=CKV2_AWS_7:EMR-managed security groups (emr_managed_*_security_group) are used; their rules are maintained by EMR
  name                              = var.name
  release_label                     = var.release_label
  applications                      = ["Hadoop"]
  service_role                      = var.service_role_arn
  security_configuration            = aws_emr_security_configuration.this.name
  log_uri                           = "s3://${var.logs_bucket}/emr/"
  log_encryption_kms_key_id         = var.kms_key_arn
  termination_protection            = var.termination_protection
  keep_job_flow_alive_when_no_steps = true
  visible_to_all_users              = false
  ebs_root_volume_size              = 64
  step_concurrency_level            = 4

  ec2_attributes {
    subnet_id                         = var.subnet_id
    instance_profile                  = var.instance_profile_arn
    emr_managed_master_security_group = aws_security_group.master.id
    emr_managed_slave_security_group  = aws_security_group.worker.id
    service_access_security_group     = aws_security_group.service.id
  }

  master_instance_group {
    instance_type = var.master_instance_type
  }

  core_instance_group {
    instance_type  = var.core_instance_type
    instance_count = var.core_instance_count
    ebs_config {
      size                 = var.core_ebs_size_gb
      type                 = "gp3"
      volumes_per_instance = 1
    }
  }

  bootstrap_action {
    name = "install-gpu-discovery-script"
    path = "s3://${var.artifacts_bucket}/${aws_s3_object.bootstrap.key}"
    args = ["s3://${var.artifacts_bucket}/${aws_s3_object.gpu_discovery.key}"]
  }

  configurations_json = jsonencode(local.yarn_gpu_configurations)

  auto_termination_policy {
    idle_timeout = var.idle_timeout_seconds
  }

  tags = merge(var.tags, {
    project                                    = var.name
    "for-use-with-amazon-emr-managed-policies" = "true"
  })
}

resource "aws_emr_instance_group" "gpu_task" {
  name           = "${var.name}-gpu-task"
  cluster_id     = aws_emr_cluster.this.id
  instance_type  = var.gpu_instance_type
  instance_count = var.gpu_instance_count
  bid_price      = var.gpu_spot_bid_price == "" ? null : var.gpu_spot_bid_price
  ebs_config {
    size                 = var.gpu_ebs_size_gb
    type                 = "gp3"
    volumes_per_instance = 1
  }
}

resource "aws_emr_managed_scaling_policy" "this" {
  cluster_id = aws_emr_cluster.this.id
  compute_limits {
    unit_type                       = "Instances"
    minimum_capacity_units          = var.core_instance_count + 1
    maximum_capacity_units          = var.core_instance_count + 1 + var.gpu_max_instances
    maximum_core_capacity_units     = var.core_instance_count
    maximum_ondemand_capacity_units = var.core_instance_count + 1 + var.gpu_max_instances
  }
}

# The Glue databases register_tables fills (EXTERNAL Delta tables over the lakehouse + *_latest views)
resource "aws_glue_catalog_database" "layers" {
  for_each     = toset(var.glue_layers)
  name         = "${var.glue_database_prefix}_${each.key}"
  description  = "catalog2vec ${each.key} tables (registered by jobs/register_tables.py)"
  location_uri = "${var.lakehouse_uri}/${each.key}"
}
