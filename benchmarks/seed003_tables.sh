#!/usr/bin/env bash
# Seed 003 (Hu et al., ICASSP 2021) on urban-mobile: the tables of docs/seed003.md (Table 2 rows,
# 3-class models, Table 3 augmentation ablation), then the ensemble and two-stage systems.
#
#   bash benchmarks/seed003_tables.sh [RUNS] [key=value ...]     # RUNS: runs/seed003; overrides go to every run
#
# Environment: EPOCHS (default 30: the 6-epoch version-1 schedule had its best validation epoch at
# the last epoch in 8 of 9 runs; a RUNS folder keeps one EPOCHS), LANES runs at a time (default 2),
# one thread each, channels-last (the waveform augmentations rule out cached features);
# ONLY="resnet fcnn ..." trains only those runs (names below). A resumable job queue
# (benchmarks/_jobs.sh): rerun it after an interruption, or run two copies at once; delete a stale
# RUNS/<run>.claim after a crash. Systems (ensembles, two-stage) are small YAML files beside the runs,
# scored by `sceneshift evaluate` like a run once their members are evaluated. The last step prints
# the markdown tables and each run's best epoch (benchmarks/seed003_report.py; also RUNS/tables.md).
set -euo pipefail
source "$(dirname "$0")/_jobs.sh"
RUNS=${1:-${RUNS:-runs/seed003}}
shift || true
EPOCHS=${EPOCHS:-30}
COMMON="train.progress=false train.threads=1 train.channels_last=true train.epochs=$EPOCHS"
mkdir -p "$RUNS"
same_schedule "$RUNS" "$EPOCHS"

# run:recipe, in priority order: Table 2 single models, the 3-class models of stage 1, then
# Table 3's ablation on the ResNet (its last row, all augmentations, is `resnet`).
JOBS="resnet:seed003_resnet fcnn:seed003_fcnn fsfcnn:seed003_fsfcnn
  resnet_3class:seed003_resnet_3class fcnn_3class:seed003_fcnn_3class
  abl_mc:seed003_ablation_mc abl_sa:seed003_ablation_sa abl_sa_sc:seed003_ablation_sa_sc
  abl_sa_sc_r:seed003_ablation_sa_sc_r"
lane() {
  local item run
  for item in $JOBS; do
    run=${item%%:*}
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $run "* ]]; then continue; fi
    all_evaluated "$RUNS/$run" || claimed_train_job "$RUNS/$run" "${item##*:}" $COMMON "$@"
  done
}
for _ in $(seq "${LANES:-2}"); do lane "$@" & done; wait

# Systems. As in the paper the 3-class stage is the ensemble of the ResNet and the FCNN.
system() {   # NAME MEMBER... : write RUNS/NAME.yaml (from stdin, atomically) and score it once its members are
  # evaluated; a report older than a member's weights (a member retrained since) is scored again
  local name=$1 m report; shift
  atomic_output "$RUNS/$name.yaml" cat
  all_evaluated "${@/#/"$RUNS"/}" || return 0
  report=$(compgen -G "$RUNS/$name-eval/*/report.json" | head -n1 || true)
  for m in "$@"; do
    if [ -n "$report" ] && [ -n "$(find "$RUNS/$m/model.pt" -newer "$report" 2>/dev/null)" ]; then
      rm -rf "$RUNS/$name-eval"
      break
    fi
  done
  once "$RUNS" "$RUNS/$name-eval/*/report.json" "$name-eval" sceneshift evaluate "$RUNS/$name.yaml"
}
printf 'ensemble: [resnet, fcnn, fsfcnn]\n' | system ensemble resnet fcnn fsfcnn
printf 'ensemble: [resnet_3class, fcnn_3class]\n' | system coarse_ensemble resnet_3class fcnn_3class
for fine in resnet fcnn fsfcnn ensemble.yaml; do
  members=(resnet_3class fcnn_3class)
  if [ "$fine" = ensemble.yaml ]; then members+=(resnet fcnn fsfcnn); else members+=("$fine"); fi
  printf 'two_stage:\n  fine: %s\n  coarse: coarse_ensemble.yaml\n' "$fine" | system "two_stage_${fine%.yaml}" "${members[@]}"
done

atomic_output "$RUNS/tables.md" python "$(dirname "$0")/seed003_report.py" "$RUNS"
cat "$RUNS/tables.md"
