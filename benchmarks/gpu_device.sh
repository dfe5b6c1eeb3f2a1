#!/usr/bin/env bash
# The issue-32 device check in one call (docs/gpu.md, "Running it on a GPU machine"): the CUDA-only
# tests CI skips (tests/unit/vision/test_gpu_paths.py), then benchmarks/gpu.py on the GPU inside a
# 300 s budget. About 6 minutes at most; give the call timeout_s=480. Writes under $OUT (or
# /tmp/gpu-out): gpu_tests.log, gpu_bench.log and the JSON record gpu_cuda.json. Needs only a
# python3 with CUDA torch + torchvision, pillow, numpy and pytest (the device image has them;
# nothing is installed). Wheels carried in .whl/ go to /tmp/site first.
set -u
out="${OUT:-/tmp/gpu-out}"
mkdir -p "$out"
py=python3
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".whl/*.whl" >/dev/null; then
    $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
{ date -u; uptime; nvidia-smi -L; $py -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name())"; } \
    2>&1 | tee "$out/gpu_tests.log"
timeout 150 $py -m pytest -q -p no:cacheprovider --noconftest -o addopts="-ra" tests/unit/vision/test_gpu_paths.py \
    2>&1 | tee -a "$out/gpu_tests.log"
timeout 420 $py benchmarks/gpu.py --device cuda --budget-s 300 --out "$out/gpu_cuda.json" 2>&1 | tee "$out/gpu_bench.log"
status=${PIPESTATUS[0]}
uptime | tee -a "$out/gpu_bench.log"
exit "$status"
