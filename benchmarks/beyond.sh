#!/usr/bin/env bash
# docs/beyond.md: the CP-ResNet rows on urban-mobile v2, then the paired comparison and the export.
# Two runs at a time with one thread each (2 cores); 15 epochs each (cosine schedule, warm-up 2).
# Usage: bash benchmarks/beyond.sh [OUT=runs/beyond]; TEACHER must name the teacher (run or ensemble file).
set -euo pipefail
OUT=${1:-runs/beyond}
TEACHER=${TEACHER:?set TEACHER to a run folder or an ensemble system file}
COMMON="train.progress=false train.threads=1 train.channels_last=true train.cache_features=true train.epochs=15"
mkdir -p "$OUT"
queue() {   # recipe:seed ...
  for item in "$@"; do
    r=${item%%:*}; s=${item##*:}
    [ -f "$OUT/$r-s$s/summary.json" ] && continue
    extra=""; [ "$r" = cp_resnet_kd ] && extra="system_options.teacher=$TEACHER"
    sceneshift run "$r" --out "$OUT/$r-s$s" train.seed="$s" $COMMON $extra > "$OUT/$r-s$s.log" 2>&1
  done
}
queue cp_resnet:0 cp_resnet_fms:0 cp_resnet:1 cp_resnet:2 cp_resnet_kd:0 &
queue cp_resnet_dir_fms:0 cp_resnet_dir:0 cp_resnet_dir_fms:1 cp_resnet_dir_fms:2 &
wait
python benchmarks/paired_seeds.py --a "$OUT"/cp_resnet-s{0,1,2} --b "$OUT"/cp_resnet_dir_fms-s{0,1,2} \
  --names "CP-ResNet" "CP-ResNet + DIR + Freq-MixStyle"
sceneshift evaluate "$OUT/cp_resnet_kd-s0" --adapt bandwise
sceneshift export "$OUT/cp_resnet_kd-s0" --int8 && sceneshift evaluate "$OUT/cp_resnet_kd-s0/model.int8.onnx"
python benchmarks/inference_speed.py "$OUT/cp_resnet_kd-s0"
