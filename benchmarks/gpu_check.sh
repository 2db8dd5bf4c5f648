#!/usr/bin/env bash
# The first check on a lent GPU, as one command of at most 4 minutes (../shared/GPU.md says how a
# lent machine is used): the training step on every path at K = 1, 8 and 32 members, the CR phase,
# peak memory, cuDNN's version and the equality line, from benchmarks/gpu_speed.py --quick.
#
#   run (device tool), carry [".whl"], timeout_s 280:  bash benchmarks/gpu_check.sh
#
# The lent image has torch but not pydantic: .whl/ holds pydantic's wheels for its Python (made once
# here with the `pip download` line of ../shared/GPU.md; .whl/ is git-ignored and carried).
set -u
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(0))" \
  | tee "$out/versions.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$out/versions.txt"
# 230 s of measurements (--quick's budget) inside a hard limit: what was printed stays in the file.
timeout 250 python3 benchmarks/gpu_speed.py --quick --device cuda 2>&1 | tee "$out/gpu_speed_quick.txt"
echo "exit $?" >> "$out/gpu_speed_quick.txt"
