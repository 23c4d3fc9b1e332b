#!/usr/bin/env bash
# Post-training int8 against quantisation-aware fine-tuning (QAT), paired over seeds (docs/beyond.md).
#
#   QAT_EPOCHS=3 [QAT_LR=2e-5] bash benchmarks/qat_seeds.sh RUN_SEED0 RUN_SEED1 RUN_SEED2
#
# Each trained RUN is exported twice: `sceneshift export RUN --int8` (post-training static int8,
# RUN/model.int8.onnx) and `sceneshift export RUN --qat QAT_EPOCHS` (RUN/model.qat.int8.onnx; the epoch
# is chosen on validation, epoch 0 = the untuned weights), both files scored on the evaluation split
# into RUN/eval/<dataset>-evaluate-int8 and -evaluate-qat-int8; then benchmarks/paired_seeds.py:
# fp32 -> int8, and int8 -> QAT int8. QAT_LR (default: the recipe's rate / 10) names its files
# RUN/model.qat-lrQAT_LR.int8.onnx and -evaluate-qat-lrQAT_LR-int8 (RUN/model-qat.pt holds the weights of
# the latest QAT; the metadata of each file, `sceneshift.qat`, its settings). LANES steps at a time (default 2); every step runs once (a claim
# per step under the first RUN's parent folder), so the script can be rerun after an interruption.
set -euo pipefail
source "$(dirname "$0")/_jobs.sh"
if [ $# -lt 2 ]; then sed -n '4p' "$0" >&2; exit 2; fi
QAT_EPOCHS=${QAT_EPOCHS:-3}
QAT_MODEL=qat.int8 QAT_OPTIONS=(--qat "$QAT_EPOCHS")
if [ -n "${QAT_LR:-}" ]; then QAT_MODEL="qat-lr$QAT_LR.int8" QAT_OPTIONS+=(--qat-lr "$QAT_LR"); fi
for r in "$@"; do
  [ -f "$r/model.pt" ] && all_evaluated "$r" || { echo "$r: not a trained and evaluated run" >&2; exit 2; }
done
CLAIMS=$(dirname "$1")
dataset() {   # RUN: the name of the dataset folder its fp32 evaluation report came from
  local report
  report=$(compgen -G "$1/eval/*-evaluate/report.json" | head -n1)
  [ -n "$report" ] || { echo "$1: no evaluation-split report" >&2; return 1; }
  basename "$(dirname "$report")" | sed 's/-evaluate$//'
}
export_logged() {   # RUN MODEL OPTIONS...: sceneshift export, its output in RUN.MODEL.log
  local run=$1 model=$2; shift 2
  sceneshift export "$run" "$@" --out "$run/model.$model.onnx" > "$run.$model.log" 2>&1
}
scored() {   # RUN MODEL [EXPORT OPTIONS]: RUN/model.MODEL.onnx exported once, scored once into RUN/eval
  local run=$1 model=$2 name report; shift 2
  name=$(basename "$run")-$model
  report="$run/eval/$(dataset "$run")-evaluate-${model//./-}"
  once "$CLAIMS" "$run/model.$model.onnx" "$name" export_logged "$run" "$model" "$@"
  [ -f "$run/model.$model.onnx" ] && once "$CLAIMS" "$report/report.json" "$name-eval" \
    sceneshift evaluate "$run/model.$model.onnx" --out "$report" > /dev/null
  return 0
}
lane() { local r; for r in "$@"; do scored "$r" int8 --int8; scored "$r" "$QAT_MODEL" "${QAT_OPTIONS[@]}"; done; }
for _ in $(seq "${LANES:-2}"); do lane "$@" & done; wait

for r in "$@"; do grep -h "^QAT" "$r.$QAT_MODEL.log" 2>/dev/null | sed "s|^|$(basename "$r"): |" || true; done
ds=$(dataset "$1")
if all_with_report "$ds-evaluate-int8" "$@" && all_with_report "$ds-evaluate-${QAT_MODEL//./-}" "$@"; then
  python "$(dirname "$0")/paired_seeds.py" --a "$@" --b "$@" --split "$ds-evaluate" \
    --split-b "$ds-evaluate-int8" --names "fp32" "int8 (post-training)"
  python "$(dirname "$0")/paired_seeds.py" --a "$@" --b "$@" --split "$ds-evaluate-int8" \
    --split-b "$ds-evaluate-${QAT_MODEL//./-}" --names "int8 (post-training)" \
    "int8 after QAT (QAT_EPOCHS=$QAT_EPOCHS${QAT_LR:+, QAT_LR=$QAT_LR})"
else
  echo "not every run has both int8 reports (see RUN.int8.log, RUN.$QAT_MODEL.log)" >&2
  exit 1
fi
