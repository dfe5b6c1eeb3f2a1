#!/usr/bin/env bash
# EMR bootstrap action: install the Spark GPU discovery script at the path the DAG and the
# documented spark-submit lines use (/opt/spark/getGpusResources.sh).
set -euo pipefail
sudo mkdir -p /opt/spark
sudo aws s3 cp "$1" /opt/spark/getGpusResources.sh
sudo chmod 0755 /opt/spark/getGpusResources.sh
