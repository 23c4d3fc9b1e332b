#!/usr/bin/env bash
# docs/seed001.md, "which parts earn their place": seed 001's semi-supervised pipeline (pre-train ->
# 3 fine-tuning iterations -> confidence-weighted pseudo-labels) on the Kaggle CNN (recipe
# seed001_kaggle) with one of the paper's parts swapped in at a time, where the paper's whole network
# (MobileFaceNet, ~2.9 training clips/s on this 2-core CPU) is out of reach:
#   arcface    the ArcFace head (s 8, m 0.2, margin in training only) instead of the linear head
#   attention  the attention module in front of the convolutions (model.attention)
#   wavegram   the learned Wavegram as a second channel beside the log-mel, at the Kaggle CNN's
#              resolution (64 bands, hop 320, so 640 taps: twice the hop, as the paper's 1024 at hop 512)
# The plain pipeline is `benchmarks/seed001_results.sh kaggle`; the same OVERRIDES (e.g. train.seed=S) keep
# the rows paired. Fine-tuning and pseudo-label stages run 15 epochs, as there. Rerunning keeps finished
# stages and resumes an interrupted one. OUT/parts-table.md lists every part run in OUT so far.
#   bash benchmarks/seed001_parts.sh [OUT=runs/seed001] [OVERRIDES...]   (PARTS="arcface attention wavegram")
set -euo pipefail
source "$(dirname "$0")/_jobs.sh"
OUT=${1:-runs/seed001}; shift || true
declare -A SWAP=(
  [arcface]="head.name=arcface head.s=8.0 head.m=0.2"
  [attention]="model.attention=true"
  [wavegram]="frontend.name=logmel_wavegram frontend.n_mels=64 frontend.hop_length=320 frontend.kernel=640"
)
PARTS=${PARTS:-arcface attention wavegram}
for part in $PARTS; do     # every name checked before anything trains
  [ -n "${SWAP[$part]:-}" ] || { echo "PARTS: unknown part '$part' (arcface, attention or wavegram)" >&2; exit 2; }
done
mkdir -p "$OUT"
for part in $PARTS; do
  sceneshift semi seed001_kaggle --out "$OUT/kaggle+$part" train.progress=false system_options.finetune_epochs=15 \
      system_options.pseudo_epochs=15 ${SWAP[$part]} "$@" > "$OUT/kaggle+$part.log" 2>&1 \
    || echo "failed: $OUT/kaggle+$part (see $OUT/kaggle+$part.log)" >&2
done
rows=()     # every part in OUT, not only this invocation's PARTS
for part in $(printf "%s\n" "${!SWAP[@]}" | sort); do
  for stage in "$OUT/kaggle+$part"/[123]-*; do
    [ -n "$(evaluated "$stage")" ] && rows+=("+ $part $(basename "$stage")=$stage")
  done
done
[ ${#rows[@]} -gt 0 ] && python benchmarks/group_table.py "${rows[@]}" | tee "$OUT/parts-table.md"
