#!/usr/bin/env bash
# Seed 000 (Abesser et al., ICASSP 2022) on urban-mobile: train C0, C1, C2, C2M, C3, C3M, score C0
# with band-wise statistics matching (the paper's C0[12]) and write Table 1 (docs/seed000.md), per seed.
#
# A schedule that fits a 2-core CPU (the paper: 400 epochs, batch 512, lr halved every 50): EPOCHS
# epochs (default 60), batch 64 (32 source + 32 target clips), Adam 1e-3 halved every EPOCHS/4
# epochs, one thread per run, channels-last and cached front-end features (no configuration
# augments), LANES runs at a time (default 2). A resumable job queue (benchmarks/_jobs.sh): rerun it
# after an interruption (delete a stale RUNS/<run>.claim left by a crash), or run two copies at once.
# Usage: bash benchmarks/seed000_table1.sh [RUNS=runs/seed000] [extra key=value overrides...]
# Environment: EPOCHS (a RUNS folder keeps one), SEEDS ("0"; e.g. "0 1 2"), LANES, CONFIGS (default all six,
# e.g. CONFIGS="c3m c3 c1 c0" for more seeds of the rows with the smallest differences). Runs:
# RUNS/<config>-s<seed>; Table 1 of a seed: RUNS/table1-s<seed>; linear probes: RUNS/probes-s<seed>;
# all seeds: RUNS/groups.md.
set -euo pipefail
source "$(dirname "$0")/_jobs.sh"
RUNS=${1:-runs/seed000}
shift || true
EPOCHS=${EPOCHS:-60}
SEEDS=${SEEDS:-0}
STEP=$(( EPOCHS >= 4 ? EPOCHS / 4 : 1 ))
SCHEDULE="train.epochs=$EPOCHS train.batch_size=64 train.step_epochs=$STEP train.threads=1
  train.progress=false train.channels_last=true train.cache_features=true"
mkdir -p "$RUNS"
same_schedule "$RUNS" "$EPOCHS"
lane() {
  local s c
  for s in $SEEDS; do
    for c in ${CONFIGS:-c3m c2m c3 c2 c1 c0}; do      # slowest first, so the lanes end together
      all_evaluated "$RUNS/$c-s$s" || claimed_train_job "$RUNS/$c-s$s" "$c" train.seed="$s" $SCHEDULE "$@"
    done
  done
}
for _ in $(seq "${LANES:-2}"); do lane "$@" & done; wait

rows=()     # every seed in RUNS, not only this invocation's SEEDS
for c in c0 c1 c2 c2m c3 c3m; do
  runs=()
  for r in "$RUNS/$c"-s*/; do [ -d "$r" ] && runs+=("${r%/}"); done
  runs=$(evaluated "${runs[@]}")
  if [ -n "$runs" ]; then rows+=("${c^^}=$runs"); fi
done
if [ ${#rows[@]} -gt 0 ]; then
  atomic_output "$RUNS/groups.md" python "$(dirname "$0")/group_table.py" "${rows[@]}" && cat "$RUNS/groups.md" || true
fi
for s in $SEEDS; do
  all_evaluated "$RUNS/c0-s$s" && once "$RUNS" "$RUNS/c0-s$s/eval/urban-mobile-evaluate-bandwise/report.json" \
    "bandwise-s$s" sceneshift evaluate "$RUNS/c0-s$s" --adapt bandwise      # C0[12] per device
  set -- "$RUNS"/{c0,c1,c2,c2m,c3,c3m}-s"$s"
  if ! all_evaluated "$@"; then echo "seed $s: not every configuration is evaluated; no Table 1" >&2; continue; fi
  once "$RUNS" "$RUNS/table1-s$s/table1.md" "table1-s$s" \
    sceneshift table1 "$@" --adapt bandwise "$RUNS/c0-s$s" --out "$RUNS/table1-s$s"
  # linear probes on each embedding half (is device information gone from the m+ half?)
  once "$RUNS" "$RUNS/probes-s$s/probes.md" "probes-s$s" \
    python "$(dirname "$0")/seed000_probe.py" "$RUNS"/{c2m,c3m,c3}-s"$s" --out "$RUNS/probes-s$s"
done
