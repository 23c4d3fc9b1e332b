#!/usr/bin/env bash
# docs/beyond.md, "Selecting the checkpoint by class-balanced validation accuracy": does train.monitor =
# val/macro_acc select better checkpoints than the default val/acc? For each recipe and seed, one run
# with the default monitor (OUT/RECIPE-acc-sK); where its val/macro_acc peaked at another epoch, the same
# run again with train.monitor=val/macro_acc (OUT/RECIPE-macro-sK; training is deterministic, which
# benchmarks/monitor_choice.py checks by comparing the two runs' validation traces), else
# OUT/RECIPE-macro-sK is a link to the first run (the same checkpoint). Both are evaluated without and with
# band-wise matching; then, per recipe, the paired comparison over the seeds (OUT/RECIPE-monitor.md).
# Usage: bash benchmarks/monitor_choice.sh [OUT=runs/monitor]
# Environment: RECIPES ("baseline cp_resnet"), SEEDS ("0 1 2"), LANES (2), EPOCHS (30; an OUT keeps one),
# EXTRA="key=value ..." for every run (e.g. data.root=... for a tiny copy).
set -euo pipefail
source "$(dirname "$0")/_jobs.sh"
OUT=${1:-runs/monitor}
EPOCHS=${EPOCHS:-30}
RECIPES=${RECIPES:-baseline cp_resnet}
SEEDS=${SEEDS:-0 1 2}
COMMON="train.progress=false train.threads=1 train.channels_last=true train.cache_features=true train.epochs=$EPOCHS ${EXTRA:-}"
mkdir -p "$OUT"
same_schedule "$OUT" "$EPOCHS${EXTRA:+ $EXTRA}"
bandwise() {
  once "$OUT" "$1/eval/*-evaluate-bandwise/report.json" "$(basename "$1")-bandwise" sceneshift evaluate "$1" --adapt bandwise
}
lane() {
  local r k a b
  for r in $RECIPES; do
    for k in $SEEDS; do
      a="$OUT/$r-acc-s$k"; b="$OUT/$r-macro-s$k"
      all_evaluated "$a" || claimed_train_job "$a" "$r" train.seed="$k" $COMMON
      all_evaluated "$a" || continue
      bandwise "$a"
      if [ ! -e "$b" ] && python benchmarks/monitor_choice.py --same-epoch "$a"; then
        ln -sfn "$(basename "$a")" "$b"      # val/macro_acc peaked at the same epoch: the same checkpoint
      fi
      [ -L "$b" ] && continue
      all_evaluated "$b" || claimed_train_job "$b" "$r" train.seed="$k" train.monitor=val/macro_acc $COMMON
      all_evaluated "$b" && bandwise "$b"
    done
  done
}
for _ in $(seq "${LANES:-2}"); do lane & done; wait
for r in $RECIPES; do
  echo "## $r"
  atomic_output "$OUT/$r-monitor.md" python benchmarks/monitor_choice.py --table "$OUT" "$r" --seeds $SEEDS \
    && cat "$OUT/$r-monitor.md" || echo "$r: not every run is trained and evaluated yet (see $OUT/*.log); rerun this script" >&2
done
