#!/usr/bin/env bash
# docs/beyond.md, "Choosing the adaptation on a held-out device": for each recipe, one run per seen
# device left out of training (data.exclude_devices; seed k for the k-th device), then each run's
# held-out device adapted on the validation split and its unseen devices on the evaluation split, with
# no adaptation, band-wise matching and bandwise+adabn; benchmarks/heldout_choice.py tabulates, over every
# held-out run of the recipe in OUT, whether the choice made on the held-out device is the one that helps
# the unseen devices (OUT/RECIPE-choice.md).
# Usage: bash benchmarks/heldout_device.sh [OUT=runs/heldout]
# Environment: RECIPES ("baseline cp_resnet_dir_fms"), HELD_OUT ("s1 s2 s3"), FIRST_SEED (0: the k-th held-out
# device's run has seed FIRST_SEED + k, so a second invocation for other devices can take new seeds), LANES (2),
# EPOCHS (30; an OUT keeps one), EXTRA="key=value ..." for every run (e.g. data.root=... for a tiny copy).
# Jobs are claimed (OUT/<job>.claim), so the script can be rerun or run twice.
set -euo pipefail
source "$(dirname "$0")/_jobs.sh"
OUT=${1:-runs/heldout}
EPOCHS=${EPOCHS:-30}
RECIPES=${RECIPES:-baseline cp_resnet_dir_fms}
HELD_OUT=${HELD_OUT:-s1 s2 s3}
FIRST_SEED=${FIRST_SEED:-0}
METHODS="bandwise bandwise+adabn"
COMMON="train.progress=false train.threads=1 train.channels_last=true train.cache_features=true train.epochs=$EPOCHS ${EXTRA:-}"
mkdir -p "$OUT"
same_schedule "$OUT" "$EPOCHS${EXTRA:+ $EXTRA}"
evaluations() {   # RUN: validation without and with each adaptation, evaluation with each adaptation
  local run=$1 name m
  name=$(basename "$run")
  once "$OUT" "$run/eval/*-validate/report.json" "$name-validate" sceneshift evaluate "$run" --split validate
  for m in $METHODS; do
    once "$OUT" "$run/eval/*-validate-$m/report.json" "$name-validate-$m" \
      sceneshift evaluate "$run" --split validate --adapt "$m"
    once "$OUT" "$run/eval/*-evaluate-$m/report.json" "$name-evaluate-$m" sceneshift evaluate "$run" --adapt "$m"
  done
}
lane() {
  local r k d run
  for r in $RECIPES; do
    k=$FIRST_SEED
    for d in $HELD_OUT; do
      run="$OUT/$r-no_$d-s$k"
      all_evaluated "$run" || claimed_train_job "$run" "$r" "data.exclude_devices=[$d]" train.seed="$k" $COMMON
      all_evaluated "$run" && evaluations "$run"
      k=$((k + 1))
    done
  done
}
for _ in $(seq "${LANES:-2}"); do lane & done; wait
for r in $RECIPES; do     # every held-out run of the recipe in OUT, this invocation's and earlier ones'
  runs=()
  for run in "$OUT/$r"-no_*-s*; do [ -f "$run/config.yaml" ] && runs+=("$run"); done
  [ ${#runs[@]} -gt 0 ] || { echo "$r: no held-out run in $OUT (see $OUT/*.log)" >&2; continue; }
  # heldout_choice.py names the first missing report (and the command that makes it) if one is missing
  echo "## $r"
  atomic_output "$OUT/$r-choice.md" python benchmarks/heldout_choice.py "${runs[@]}" --methods $METHODS \
    && cat "$OUT/$r-choice.md" || echo "$r: not every run is trained and evaluated yet (see $OUT/*.log); rerun this script" >&2
done
