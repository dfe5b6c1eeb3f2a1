#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript): prints the GPU
# addresses of this node as Spark's ResourceInformation JSON, e.g. {"name":"gpu","addresses":["0","1"]}.
ADDRS=$(nvidia-smi --query-gpu=index --format=csv,noheader | sed -e ':a' -e 'N' -e '$!ba' -e 's/\n/","/g')
echo "{\"name\": \"gpu\", \"addresses\":[\"$ADDRS\"]}"
