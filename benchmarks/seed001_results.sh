#!/usr/bin/env bash
# docs/seed001.md results on urban-mobile v2 (issue 9), one seed, for one network's pipeline:
# pre-train on device a -> 3 fine-tuning iterations on the 20 % labeled seen-device clips ->
# confidence-weighted pseudo-labels; the hard and thresholded (0.5) pseudo-label variants from the
# same fine-tuned network; the all-labels upper bound (the same network trained as a plain
# classifier on every labeled training clip). Fine-tuning and pseudo-label stages run 15 epochs.
# Rerunning keeps evaluated runs and resumes interrupted ones (benchmarks/_jobs.sh).
#   bash benchmarks/seed001_results.sh kaggle [OUT=runs/seed001] [OVERRIDES...]   # seed001_kaggle, upper: baseline
#   bash benchmarks/seed001_results.sh mfn    [OUT=runs/seed001] [OVERRIDES...]   # seed001, upper: seed001_pretrain
set -euo pipefail
source "$(dirname "$0")/_jobs.sh"
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
start=$(ls -d "$OUT/$NET"/2-finetune-* 2>/dev/null | sort -V | tail -n 1 || true)   # the last fine-tuning stage
for v in "hard system_options.pseudo_labels=hard" "threshold0.5 system_options.threshold=0.5"; do
  set -- $v
  [ -n "$start" ] && train_job "$OUT/$NET/3-pseudo-$1" "$RECIPE" "${COMMON[@]}" train.epochs=15 \
      system_options.stage=pseudo system_options.init_from="$start" system_options.reset_head=false "$2" || true
done
train_job "$OUT/$NET-all-labels" "$UPPER" "${COMMON[@]}" || true
rows=()
for stage in "$OUT/$NET"/[123]-* "$OUT/$NET-all-labels"; do
  [ -n "$(evaluated "$stage")" ] && rows+=("$NET $(basename "$stage")=$stage")
done
[ ${#rows[@]} -gt 0 ] && python benchmarks/group_table.py "${rows[@]}" | tee "$OUT/$NET-table.md"
