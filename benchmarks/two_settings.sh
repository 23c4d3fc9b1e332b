#!/usr/bin/env bash
# One recipe trained two ways over the same seeds, then compared paired (benchmarks/paired_seeds.py):
# the "trained both ways, three seeds each" checks of docs/performance.md.
#
#   bash benchmarks/two_settings.sh OUT RECIPE "A overrides" "B overrides" [overrides for both...]
#   e.g. EPOCHS=30 bash benchmarks/two_settings.sh runs/fcnn-layout seed003_fcnn \
#          train.channels_last=false train.channels_last=true
#
# A and B are space-separated key=value lists and win over the overrides for both; the script's own
# train.seed, train.epochs, train.threads and train.progress win over all (naming one is refused).
# Runs are OUT/a-s<seed> and OUT/b-s<seed>, seed by seed (a, then b), so an interrupted queue leaves
# pairs. Environment: SEEDS (default "0 1 2"), EPOCHS (default 30; an OUT keeps one EPOCHS and one
# set of settings), LANES runs at a time (default 2) with THREADS threads each (default 1). A
# resumable job queue (benchmarks/_jobs.sh): rerun it after an interruption (Ctrl-C or SIGTERM stops
# every lane; a trainer saves its checkpoint first), or run two copies at once; delete a stale
# OUT/<run>.claim after a crash. The training times printed are those of each run's last invocation.
set -euo pipefail
source "$(dirname "$0")/_jobs.sh"
if [ $# -lt 4 ]; then sed -n '5,7p' "$0" >&2; exit 2; fi
OUT=$1 RECIPE=$2 A=$3 B=$4
shift 4
EPOCHS=${EPOCHS:-30}
SEEDS=${SEEDS:-0 1 2}
set -f                                   # override values such as model.blocks=[2,2] are not globs
for o in $A $B "$@"; do
  case $o in train.seed=*|train.epochs=*|train.threads=*|train.progress=*)
    echo "$o: set by the script (SEEDS, EPOCHS, THREADS); leave it out of the overrides" >&2; exit 2;;
  esac
done
mkdir -p "$OUT"
same_schedule "$OUT" "$EPOCHS"
printf 'recipe: %s\na: %s\nb: %s\nboth: %s\n' "$RECIPE" "$A" "$B" "$*" > "$OUT/settings.tmp.$$"
# ln fails if OUT/settings exists: two copies started at once on a fresh OUT cannot both claim it
if ln "$OUT/settings.tmp.$$" "$OUT/settings" 2>/dev/null || cmp -s "$OUT/settings" "$OUT/settings.tmp.$$"; then
  rm -f "$OUT/settings.tmp.$$"
else
  rm -f "$OUT/settings.tmp.$$"
  echo "$OUT holds runs of other settings (see $OUT/settings); give another folder" >&2
  exit 2
fi
trap 'trap - INT TERM; kill 0' INT TERM   # background lanes ignore Ctrl-C by themselves

read -ra A_OVERRIDES <<< "$A"
read -ra B_OVERRIDES <<< "$B"
lane() {
  local s fixed
  for s in $SEEDS; do
    fixed=(train.progress=false train.threads="${THREADS:-1}" train.epochs="$EPOCHS" train.seed="$s")
    all_evaluated "$OUT/a-s$s" || claimed_train_job "$OUT/a-s$s" "$RECIPE" "$@" "${A_OVERRIDES[@]}" "${fixed[@]}"
    all_evaluated "$OUT/b-s$s" || claimed_train_job "$OUT/b-s$s" "$RECIPE" "$@" "${B_OVERRIDES[@]}" "${fixed[@]}"
  done
}
for _ in $(seq "${LANES:-2}"); do lane "$@" & done; wait

a=() b=()
for s in $SEEDS; do
  if all_evaluated "$OUT/a-s$s" "$OUT/b-s$s"; then a+=("$OUT/a-s$s"); b+=("$OUT/b-s$s")
  else echo "seed $s: not both runs evaluated (failed, or claimed by another copy: see $OUT/*.log)" >&2; fi
done
if [ ${#a[@]} -lt 2 ]; then echo "fewer than two evaluated pairs in $OUT: no paired interval" >&2; exit 1; fi
for r in "${a[@]}" "${b[@]}"; do   # best validation epoch of each run (1-based) and its training time
  python - "$r" <<'EOF'
import json, sys
s = json.load(open(f"{sys.argv[1]}/summary.json"))
print(f"{sys.argv[1]}: best epoch {s['best_epoch'] + 1}/{s['epochs']}, training {s['train_seconds']:.0f} s")
EOF
done
# the run's own evaluation (RUN/eval/<dataset>-evaluate), not a later adapted or int8 report beside it
report=$(compgen -G "${a[0]}/eval/*-evaluate/report.json" || compgen -G "${a[0]}/eval/*/report.json" | head -n1)
report=${report%%$'\n'*}
split=$(basename "$(dirname "$report")")
python "$(dirname "$0")/paired_seeds.py" --split "$split" --a "${a[@]}" --b "${b[@]}" \
  --names "A: ${A:-recipe}" "B: ${B:-recipe}"
