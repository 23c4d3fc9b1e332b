#!/usr/bin/env bash
# One recipe trained two ways over the same seeds, then compared paired (benchmarks/paired_seeds.py):
# the "trained both ways, three seeds each" checks of docs/performance.md.
#
#   bash benchmarks/two_settings.sh OUT RECIPE "A overrides" "B overrides" [overrides for both...]
#   e.g. EPOCHS=30 bash benchmarks/two_settings.sh runs/fcnn-layout seed003_fcnn \
#          train.channels_last=false train.channels_last=true
#
# Runs are OUT/a-s<seed> and OUT/b-s<seed>, seed by seed (a, then b), so an interrupted queue leaves
# pairs. Environment: SEEDS (default "0 1 2"), EPOCHS (default 30; an OUT keeps one EPOCHS),
# LANES runs at a time (default 2) with THREADS threads each (default 1). A resumable job queue
# (benchmarks/_jobs.sh): rerun it after an interruption, or run two copies at once.
set -euo pipefail
source "$(dirname "$0")/_jobs.sh"
if [ $# -lt 4 ]; then sed -n '5,7p' "$0" >&2; exit 2; fi
OUT=$1 RECIPE=$2 A=$3 B=$4
shift 4
EPOCHS=${EPOCHS:-30}
SEEDS=${SEEDS:-0 1 2}
mkdir -p "$OUT"
same_schedule "$OUT" "$EPOCHS"
printf 'recipe: %s\na: %s\nb: %s\nboth: %s\n' "$RECIPE" "$A" "$B" "$*" > "$OUT/settings.tmp.$$"
if [ -f "$OUT/settings" ] && ! cmp -s "$OUT/settings" "$OUT/settings.tmp.$$"; then
  rm -f "$OUT/settings.tmp.$$"
  echo "$OUT holds runs of other settings (see $OUT/settings); give another folder" >&2
  exit 2
fi
mv "$OUT/settings.tmp.$$" "$OUT/settings"

lane() {
  local s
  for s in $SEEDS; do
    # $A, $B and "$@" are word-split on purpose: each is a list of key=value overrides
    all_evaluated "$OUT/a-s$s" || claimed_train_job "$OUT/a-s$s" "$RECIPE" train.progress=false \
      train.threads="${THREADS:-1}" train.epochs="$EPOCHS" train.seed="$s" "$@" $A
    all_evaluated "$OUT/b-s$s" || claimed_train_job "$OUT/b-s$s" "$RECIPE" train.progress=false \
      train.threads="${THREADS:-1}" train.epochs="$EPOCHS" train.seed="$s" "$@" $B
  done
}
for _ in $(seq "${LANES:-2}"); do lane "$@" & done; wait

a=() b=()
for s in $SEEDS; do
  if all_evaluated "$OUT/a-s$s" "$OUT/b-s$s"; then a+=("$OUT/a-s$s"); b+=("$OUT/b-s$s"); fi
done
if [ ${#a[@]} -lt 2 ]; then echo "fewer than two evaluated pairs in $OUT; nothing to compare" >&2; exit 1; fi
for r in "${a[@]}" "${b[@]}"; do   # best validation epoch of each run (1-based) and its training time
  python - "$r" <<'EOF'
import json, sys
s = json.load(open(f"{sys.argv[1]}/summary.json"))
print(f"{sys.argv[1]}: best epoch {s.get('best_epoch', -1) + 1}/{s.get('epochs')}, training {s.get('train_seconds', 0):.0f} s")
EOF
done
python "$(dirname "$0")/paired_seeds.py" --a "${a[@]}" --b "${b[@]}" --names "A: ${A:-recipe}" "B: ${B:-recipe}"
