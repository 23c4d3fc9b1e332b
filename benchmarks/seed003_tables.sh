#!/usr/bin/env bash
# Reproduce the seed-003 tables of docs/seed003.md on urban-mobile (Table 2 rows, Table 3 ablation).
#
#   bash benchmarks/seed003_tables.sh            # runs into /tmp/runs/seed003 (RUNS=... to change)
#
# Trains one run at a time with one thread (train.threads=1 in the recipes); a run that already
# has model.pt is kept, one that was interrupted is resumed. Systems (ensembles, two-stage) are
# small YAML files beside the runs, scored by `sceneshift evaluate` like a run. The last step
# prints the markdown tables from the report.json files.
set -euo pipefail
RUNS=${RUNS:-/tmp/runs/seed003}
mkdir -p "$RUNS"

train() {   # train NAME RECIPE [key=value ...]
  local name=$1 recipe=$2
  shift 2
  if [ -f "$RUNS/$name/model.pt" ]; then
    echo "== $name: done already"
  elif [ -f "$RUNS/$name/config.yaml" ]; then
    sceneshift train --resume --out "$RUNS/$name"
  else
    sceneshift train "$recipe" --out "$RUNS/$name" train.progress=false "$@"
  fi
}

# Table 2: single models (10 classes, all augmentations) and the 3-class models of stage 1.
train resnet seed003_resnet
train fcnn seed003_fcnn
train fsfcnn seed003_fsfcnn
train resnet_3class seed003_resnet_3class
train fcnn_3class seed003_fcnn_3class
# Table 3: augmentation ablation on the ResNet (its last row, all augmentations, is `resnet`).
train abl_mc seed003_ablation_mc
train abl_sa seed003_ablation_sa
train abl_sa_sc seed003_ablation_sa_sc
train abl_sa_sc_r seed003_ablation_sa_sc_r

# Systems. As in the paper the 3-class stage is the ensemble of the ResNet and the FCNN.
cat > "$RUNS/ensemble.yaml" <<'EOF'
ensemble: [resnet, fcnn, fsfcnn]
EOF
cat > "$RUNS/coarse_ensemble.yaml" <<'EOF'
ensemble: [resnet_3class, fcnn_3class]
EOF
for fine in resnet fcnn fsfcnn ensemble.yaml; do
  name=two_stage_${fine%.yaml}
  printf 'two_stage:\n  fine: %s\n  coarse: coarse_ensemble.yaml\n' "$fine" > "$RUNS/$name.yaml"
done
for system in ensemble coarse_ensemble two_stage_resnet two_stage_fcnn two_stage_fsfcnn two_stage_ensemble; do
  sceneshift evaluate "$RUNS/$system.yaml"
done

python benchmarks/seed003_report.py "$RUNS"
