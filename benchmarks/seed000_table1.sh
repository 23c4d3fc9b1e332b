#!/usr/bin/env bash
# Seed 000 (Abesser et al., ICASSP 2022) on urban-mobile: train C0, C1, C2, C2M, C3, C3M, score C0
# with band-wise statistics matching (the paper's C0[12]) and write Table 1 (docs/seed000.md).
#
# Short schedule that fits a 2-core CPU (the paper: 400 epochs, batch 512, lr halved every 50):
# 20 epochs, batch 64 (32 source + 32 target clips), Adam 1e-3 halved every 5 epochs.
# Usage: benchmarks/seed000_table1.sh [RUNS_DIR] [extra key=value overrides...]
set -euo pipefail
RUNS=${1:-/tmp/runs/seed000}
shift || true
SCHEDULE="train.epochs=20 train.batch_size=64 train.step_epochs=5 train.threads=1 train.progress=false"
mkdir -p "$RUNS"
for c in c0 c1 c2 c2m c3 c3m; do
  if [ -f "$RUNS/$c/model.pt" ]; then echo "$c: done already"; continue; fi
  start=$(date +%s)
  sceneshift train "$c" --out "$RUNS/$c" $SCHEDULE "$@"      # trains, selects on validate, evaluates
  echo "$c: $(( $(date +%s) - start )) s" | tee -a "$RUNS/wall_times.txt"
done
sceneshift evaluate "$RUNS/c0" --adapt bandwise                # per-device report of C0[12]
sceneshift table1 "$RUNS"/c0 "$RUNS"/c1 "$RUNS"/c2 "$RUNS"/c2m "$RUNS"/c3 "$RUNS"/c3m \
  --adapt bandwise "$RUNS/c0" --out "$RUNS/table1"
# Linear probes on each embedding half (is device information gone from the m+ half?)
python "$(dirname "$0")/seed000_probe.py" "$RUNS"/c2m "$RUNS"/c3m "$RUNS"/c3 --out "$RUNS/probes"
# Supplementary (SEED000_LONG=1): C3 and C3M with a 3x longer schedule, Table 1 and probes for them.
if [ "${SEED000_LONG:-0}" = 1 ]; then
  LONG="$RUNS-long"
  for c in c3m c3; do
    [ -f "$LONG/$c/model.pt" ] && continue
    start=$(date +%s)
    sceneshift train "$c" --out "$LONG/$c" train.epochs=60 train.batch_size=64 train.step_epochs=15 \
      train.threads=1 train.progress=false "$@"
    echo "$c: $(( $(date +%s) - start )) s" | tee -a "$LONG/wall_times.txt"
  done
  sceneshift table1 "$LONG"/c3 "$LONG"/c3m --out "$LONG/table1"
  python "$(dirname "$0")/seed000_probe.py" "$LONG"/c3m "$LONG"/c3 --out "$LONG/probes"
fi
