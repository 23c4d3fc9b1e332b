#!/usr/bin/env bash
# docs/seed002.md, Tables 5 and 6 on urban-mobile v2 with the short schedule (recipe seed002):
# normalisation rows x three seeds, MixupNorm lambda, MixupNorm in the encoder only, the event block, and BN,
# MixupNorm and ResNorm with three warm-restart cycles (35 epochs, seed 0); then the per-group table and
# the paired comparisons. Jobs run in priority order (the three seeds of the key
# comparison, MixupNorm - BN, then every other row once, then the rest), two at a time with one thread each; a job is claimed by
# creating OUT/<job>.claim while it runs, so the script can be rerun or run twice at once (evaluated
# runs are kept, interrupted ones resumed, claimed ones skipped: delete a stale .claim after a
# crash). Usage: bash benchmarks/seed002_tables.sh [OUT=runs/seed002]
# Environment: LANES (parallel jobs, default 2); ONLY="rfn-s0 mixup0.3-s0 ..." runs only those jobs
# (another instance started later joins the same queue).
set -euo pipefail
source "$(dirname "$0")/_jobs.sh"
OUT=${1:-runs/seed002}
mkdir -p "$OUT"
JOBS=(
  "bn 0 model.norm=batch" "mixup0.1 0 model.norm=mixup" "bn 1 model.norm=batch" "mixup0.1 1 model.norm=mixup"
  "bn 2 model.norm=batch" "mixup0.1 2 model.norm=mixup" "in 0 model.norm=instance" "rfn 0 model.norm=rfn"
  "resnorm 0 model.norm=resnorm" "mixup0.1-encoder 0 model.norm=mixup model.norm_at=encoder"
  "mixup0.1-event 0 model.norm=mixup model.event_block=true"
  "in 1 model.norm=instance" "rfn 1 model.norm=rfn" "resnorm 1 model.norm=resnorm"
  "mixup0.3 0 model.norm=mixup model.norm_lambda=0.3" "mixup0.5 0 model.norm=mixup model.norm_lambda=0.5"
  "in 2 model.norm=instance" "rfn 2 model.norm=rfn" "resnorm 2 model.norm=resnorm"
  "bn-35ep 0 model.norm=batch train.epochs=35" "mixup0.1-35ep 0 model.norm=mixup train.epochs=35"
  "resnorm-35ep 0 model.norm=resnorm train.epochs=35"
)
worker() {
  for job in "${JOBS[@]}"; do
    set -- $job
    local name=$1 seed=$2; shift 2
    local run="$OUT/$name-s$seed"
    all_evaluated "$run" && continue
    [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name-s$seed "* ]] && continue
    claimed_train_job "$run" seed002 train.seed="$seed" train.progress=false train.threads=1 \
        model.event_block=false "$@"
  done
}
for _ in $(seq "${LANES:-2}"); do worker & done; wait
rows=()
for name in bn in mixup0.1 mixup0.3 mixup0.5 mixup0.1-encoder mixup0.1-event resnorm rfn bn-35ep mixup0.1-35ep \
    resnorm-35ep; do
  runs=$(evaluated "$OUT/$name"-s{0,1,2})
  [ -n "$runs" ] && rows+=("$name=$runs")
done
[ ${#rows[@]} -gt 0 ] && python benchmarks/group_table.py "${rows[@]}" | tee "$OUT/table.md"
# three-seed pairs: the key comparison (also with whole locations resampled), IN against MixupNorm, the successors
for pair in "bn mixup0.1 BN MixupNorm" "in mixup0.1 IN MixupNorm" "bn resnorm BN ResNorm" "bn rfn BN RFN" \
            "mixup0.1 resnorm MixupNorm ResNorm"; do
  set -- $pair
  all_evaluated "$OUT/$1"-s{0,1,2} "$OUT/$2"-s{0,1,2} || continue
  python benchmarks/paired_seeds.py --a "$OUT/$1"-s{0,1,2} --b "$OUT/$2"-s{0,1,2} --names "$3" "$4"
  if [ "$1 $2" = "bn mixup0.1" ]; then
    python benchmarks/paired_seeds.py --a "$OUT/$1"-s{0,1,2} --b "$OUT/$2"-s{0,1,2} --names "$3" "$4" --cluster location
  fi
done
# the three-cycle schedule (5 + 10 + 20 epochs, seed 0): does BN's lead hold when nobody stops at the last epoch?
for variant in mixup0.1-35ep resnorm-35ep; do
  if all_evaluated "$OUT/$variant-s0" "$OUT/bn-35ep-s0"; then
    python benchmarks/paired_seeds.py --a "$OUT/bn-35ep-s0" --b "$OUT/$variant-s0" --names "BN (35 epochs)" "$variant"
  fi
done
# one-seed variants of MixupNorm against it, paired on seed 0 (the bootstrap counts test recordings only)
for variant in mixup0.1-encoder mixup0.1-event mixup0.3 mixup0.5; do
  if all_evaluated "$OUT/$variant-s0" "$OUT/mixup0.1-s0"; then
    python benchmarks/paired_seeds.py --a "$OUT/mixup0.1-s0" --b "$OUT/$variant-s0" --names "MixupNorm (0.1)" "$variant"
  fi
done
