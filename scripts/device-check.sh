#!/usr/bin/env bash
# device-check.sh: the one prepared script for a machine with a real GPU
# (the `device` tool of this workplace, or any Linux box with Vulkan).
#
# Prepare here (x86-64, cgo):   make device-pack    (bin/rwkv + .devcheck/ with fixtures)
# Run there, from the repo root: bash scripts/device-check.sh [OUT_DIR]
#
# It checks the GPU engine against the ideal logits of the carried fixtures
# (rwkv verify: seq and batch, relative L2 within max(1e-4, the model's
# float32 noise floor) and every argmax equal), runs 8 streams through
# batched steps against the CPU reference (verify --streams 8),
# then benchmarks synthetic models of published shapes. Everything it prints
# also goes to OUT_DIR (default $OUT, else ./device-out).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-device-out}}
mkdir -p "$out"
exec > >(tee "$out/device-check.log") 2>&1

# The Vulkan loader, when the image lacks it (see the device tool's README).
if ! ldconfig -p | grep -q 'libvulkan.so.1 '; then
  for f in .gl/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
  ldconfig
fi
[ -e /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json

rwkv=bin/rwkv
fix=.devcheck
$rwkv devices || exit 1

ids=$(cat $fix/prompt_ids.txt)
status=0
for t in $(cat $fix/types.txt); do
  echo "== verify $t"
  $rwkv verify -m $fix/rwkv7-tiny-$t.gguf --tokens "$ids" --ref $fix/rwkv7-tiny-$t.ideal.f32 || status=1
done
# Many streams through batched steps (prefill and decode mixed, joining and
# leaving) against the CPU reference alone, on three types.
for t in F16 Q8_0 Q4_K_M; do
  echo "== verify --streams 8 $t"
  $rwkv verify -m $fix/rwkv7-tiny-$t.gguf --tokens "$ids" --streams 8 || status=1
done

# Throughput: a 1-second warm-up is part of each test (one untimed run), and
# the read-bandwidth probe runs in the same process.
[ -n "${SKIP_BENCH:-}" ] && exit $status   # a dry run of the checks (lavapipe)
for preset in 0.1b 2.9b; do
  for type in f16 q8_0 q4_k; do
    echo "== bench $preset $type"
    timeout 300 $rwkv bench --preset $preset --type $type --cache-dir /tmp/rwkv-synth -b 1,8 -r 3 --profile || status=1
  done
done
exit $status
