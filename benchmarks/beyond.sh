#!/usr/bin/env bash
# docs/beyond.md: the CP-ResNet rows on urban-mobile v2, then the paired comparison and the export.
# Two runs at a time with one thread each (2 cores); 15 epochs each (cosine schedule, warm-up 2).
# Usage: bash benchmarks/beyond.sh [OUT=runs/beyond]. The distillation teacher is the ensemble of the seed-0
# runs with DIR + Freq-MixStyle, Freq-MixStyle and DIR (written to $OUT/teacher.yaml once they exist).
set -euo pipefail
OUT=${1:-runs/beyond}
COMMON="train.progress=false train.threads=1 train.channels_last=true train.cache_features=true train.epochs=15"
mkdir -p "$OUT"
queue() {   # recipe:seed ...
  for item in "$@"; do
    r=${item%%:*}; s=${item##*:}
    [ -f "$OUT/$r-s$s/summary.json" ] && continue
    extra=""; [ "$r" = cp_resnet_kd ] && extra="system_options.teacher=$OUT/teacher.yaml"
    sceneshift run "$r" --out "$OUT/$r-s$s" train.seed="$s" $COMMON $extra > "$OUT/$r-s$s.log" 2>&1
  done
}
queue cp_resnet:0 cp_resnet_fms:0 cp_resnet:1 cp_resnet:2 cp_resnet_fms:1 &
queue cp_resnet_dir_fms:0 cp_resnet_dir:0 cp_resnet_dir_fms:1 cp_resnet_dir_fms:2 &
queue cp_resnet_dir:1 cp_resnet_dir:2 &
wait
printf 'ensemble:\n  - cp_resnet_dir_fms-s0\n  - cp_resnet_fms-s0\n  - cp_resnet_dir-s0\n' > "$OUT/teacher.yaml"
sceneshift evaluate "$OUT/teacher.yaml"
queue cp_resnet_kd:0 & queue cp_resnet_kd:1 &
wait
python benchmarks/paired_seeds.py --a "$OUT"/cp_resnet-s{0,1,2} --b "$OUT"/cp_resnet_dir_fms-s{0,1,2} \
  --names "CP-ResNet" "CP-ResNet + DIR + Freq-MixStyle"
for r in cp_resnet-s0 cp_resnet_dir_fms-s0 cp_resnet_kd-s0; do sceneshift evaluate "$OUT/$r" --adapt bandwise; done
sceneshift export "$OUT/cp_resnet_kd-s0" --int8 && sceneshift evaluate "$OUT/cp_resnet_kd-s0/model.int8.onnx"
python benchmarks/inference_speed.py "$OUT/cp_resnet_kd-s0"
