#!/usr/bin/env bash
# docs/seed001.md results on urban-mobile v2 (issue 9), one seed, for one network's pipeline:
# pre-train on device a -> 3 fine-tuning iterations on the 20 % labeled seen-device clips ->
# confidence-weighted pseudo-labels; the hard and thresholded (0.5) pseudo-label variants from the
# same fine-tuned network; the all-labels upper bound (the same network trained as a plain
# classifier on every labeled training clip). Fine-tuning and pseudo-label stages run 15 epochs.
# Rerunning keeps finished stages and resumes interrupted ones.
#   bash benchmarks/seed001_results.sh kaggle [OUT=runs/seed001] [OVERRIDES...]   # seed001_kaggle, upper: baseline
#   bash benchmarks/seed001_results.sh mfn    [OUT=runs/seed001] [OVERRIDES...]   # seed001, upper: seed001_pretrain
set -euo pipefail
NET=${1:?kaggle or mfn}; OUT=${2:-runs/seed001}; shift 2 || shift $#
case "$NET" in
  kaggle) RECIPE=seed001_kaggle; UPPER=baseline ;;
  mfn) RECIPE=seed001; UPPER=seed001_pretrain ;;
  *) echo "first argument: kaggle or mfn (got $NET)" >&2; exit 2 ;;
esac
COMMON=(train.progress=false "$@")
mkdir -p "$OUT"
sceneshift semi "$RECIPE" --out "$OUT/$NET" "${COMMON[@]}" system_options.finetune_epochs=15 \
    system_options.pseudo_epochs=15 > "$OUT/$NET.log" 2>&1 || echo "failed: $OUT/$NET (see $OUT/$NET.log)"
start="$OUT/$NET/2-finetune-3"
for v in "hard system_options.pseudo_labels=hard" "threshold0.5 system_options.threshold=0.5"; do
  set -- $v; run="$OUT/$NET/3-pseudo-$1"
  [ -f "$run/summary.json" ] || sceneshift train "$RECIPE" --out "$run" "${COMMON[@]}" train.epochs=15 \
      system_options.stage=pseudo system_options.init_from="$start" system_options.reset_head=false "$2" \
      > "$run.log" 2>&1 || echo "failed: $run (see $run.log)"
done
upper="$OUT/$NET-all-labels"
[ -f "$upper/summary.json" ] || sceneshift train "$UPPER" --out "$upper" "${COMMON[@]}" > "$upper.log" 2>&1 \
    || echo "failed: $upper (see $upper.log)"
rows=()
for stage in 1-pretrain 2-finetune-1 2-finetune-3 3-pseudo-1 3-pseudo-hard 3-pseudo-threshold0.5; do
  [ -f "$OUT/$NET/$stage/summary.json" ] && rows+=("$NET $stage=$OUT/$NET/$stage")
done
[ -f "$upper/summary.json" ] && rows+=("$NET all labels=$upper")
python benchmarks/group_table.py "${rows[@]}" | tee "$OUT/$NET-table.md"
