#!/usr/bin/env bash
# The GPU path end to end on a small urban-mobile copy (docs/distributed.md): training with
# train.accelerator=gpu in fp32 and in bf16-mixed + channels-last + compile, seed 001's whole
# semi-supervised pipeline (MobileFaceNet), the disentangle system, a seed 003 ResNet, each
# evaluated on the GPU, and the ONNX export of a GPU-trained run; then throughput.py on the GPU.
# Every check runs (a failure does not stop the rest) and prints ok/FAIL with its log.
#   sceneshift benchmark build --max-per-class 1 --out DATA          # on any machine (16 MB)
#   bash benchmarks/gpu_check.sh DATA OUT            # ACCEL=cpu bash ...: the same checks on the CPU
set -uo pipefail
DATA=${1:?dataset folder}; OUT=${2:?output folder}
mkdir -p "$OUT"
if command -v sceneshift > /dev/null; then ss() { sceneshift "$@"; }
else ss() { python3 -c 'import sys; from sceneshift.cli import main; sys.exit(main())' "$@"; }; fi
check() {
  local name=$1 t0=$SECONDS; shift
  if "$@" > "$OUT/$name.log" 2>&1; then echo "ok   $name ($((SECONDS - t0)) s)"
  else echo "FAIL $name ($((SECONDS - t0)) s), $OUT/$name.log:"; tail -n 8 "$OUT/$name.log"; fi
}
G=(--data "$DATA" train.accelerator="${ACCEL:-gpu}" train.progress=false)   # ACCEL=cpu: the same checks on a CPU
python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")'
check baseline-fp32 ss train baseline --out "$OUT/baseline-fp32" "${G[@]}" train.epochs=2 \
    train.channels_last=false train.cache_features=false      # the contiguous, uncached path
check baseline-bf16-cl-compile ss train baseline --out "$OUT/baseline-bf16" "${G[@]}" train.epochs=2 \
    train.precision=bf16-mixed train.channels_last=true train.compile=true
check seed001-semi ss semi seed001 --out "$OUT/seed001" "${G[@]}" train.epochs=1 train.channels_last=true \
    system_options.finetune_epochs=1 system_options.pseudo_epochs=1
check disentangle ss train disentangle --out "$OUT/disentangle" "${G[@]}" train.epochs=1
check seed003-resnet-bf16 ss train seed003_resnet --out "$OUT/seed003" "${G[@]}" train.epochs=1 train.precision=bf16-mixed
check export-onnx ss export "$OUT/baseline-fp32" --format onnx
for f in "$OUT"/*/eval/*/report.md; do [ -f "$f" ] && echo "evaluated: ${f#"$OUT"/}"; done
