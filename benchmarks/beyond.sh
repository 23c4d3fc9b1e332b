#!/usr/bin/env bash
# docs/beyond.md: the CP-ResNet rows on urban-mobile v2, then the paired comparisons, band-wise
# matching on top of every run (with − without, paired), batch-norm statistics re-estimated per unseen
# device on top (adabn, bandwise+adabn), the int8 export with and without quantisation-aware fine-tuning, inference speed.
# EPOCHS epochs each (default 30; cosine schedule, warm-up 2), one thread per run, LANES runs at a
# time (default 2).
# The distillation teacher is the ensemble of the seed-0 runs with DIR + Freq-MixStyle,
# Freq-MixStyle and DIR ($OUT/teacher.yaml, written once they are evaluated); the distilled runs
# wait for it. A job is claimed by creating OUT/<job>.claim while it runs, so the script can be
# rerun (evaluated runs kept, interrupted ones resumed) or run twice at once; delete a stale .claim
# after a crash. Usage: bash benchmarks/beyond.sh [OUT=runs/beyond]
# Environment: EPOCHS (30; docs/beyond.md's 15-epoch table: EPOCHS=15; an OUT keeps one EPOCHS),
# LANES; ONLY="cp_resnet_kd-s2 ..." runs only those jobs (the teacher's members are run when a
# distilled job is asked for); EXTRA="key=value ..." overrides for every run (an OUT keeps one), e.g.
# EXTRA=train.ema_decay=0.995 for the weight-averaged rows; TEACHER=RUN_OR_ENSEMBLE_FILE distils from
# that teacher instead (its members are then not trained here; choose it on the validation split with
# benchmarks/pick_teacher.py); STUDENT_SEEDS="0 1 2 3 4 5 6" trains (and adapts, exports) more distilled seeds.
set -euo pipefail
source "$(dirname "$0")/_jobs.sh"
OUT=${1:-runs/beyond}
EPOCHS=${EPOCHS:-30}
COMMON="train.progress=false train.threads=1 train.channels_last=true train.cache_features=true train.epochs=$EPOCHS ${EXTRA:-}"
TEACHER_MEMBERS="cp_resnet_dir_fms-s0 cp_resnet_fms-s0 cp_resnet_dir-s0"
mkdir -p "$OUT"
same_schedule "$OUT" "$EPOCHS${EXTRA:+ $EXTRA}"
wanted() {   # JOB: is it asked for (everything when ONLY is empty)?
  [ -z "${ONLY:-}" ] && return 0
  [[ " $ONLY " == *" $1 "* ]] && return 0
  [ -z "${TEACHER:-}" ] && [[ " $TEACHER_MEMBERS " == *" $1 "* ]] && [[ " $ONLY " == *" cp_resnet_kd-"* ]]
}
worker() {   # recipe:seed ... in priority order
  local item r s job extra
  for item in "$@"; do
    r=${item%%:*}; s=${item##*:}; job=$r-s$s; extra=""
    wanted "$job" || continue
    all_evaluated "$OUT/$job" && continue
    if [ "$r" = cp_resnet_kd ]; then
      [ -e "${TEACHER:-$OUT/teacher.yaml}" ] || continue
      extra="system_options.teacher=${TEACHER:-$OUT/teacher.yaml}"
    fi
    claimed_train_job "$OUT/$job" "$r" train.seed="$s" $COMMON $extra
  done
}
STUDENT_SEEDS=${STUDENT_SEEDS:-0 1 2}
STUDENTS=$(printf 'cp_resnet_kd:%s ' $STUDENT_SEEDS)
seeds_of() { if [ "$1" = cp_resnet_kd ]; then echo $STUDENT_SEEDS; else echo 0 1 2; fi; }   # RECIPE: its seeds here
PLAIN="cp_resnet_dir_fms:0 cp_resnet_fms:0 cp_resnet_dir:0 cp_resnet_dir_fms:1 cp_resnet_dir_fms:2 cp_resnet_fms:1
  cp_resnet_fms:2 cp_resnet:0 cp_resnet:1 cp_resnet:2 cp_resnet_dir:1 cp_resnet_dir:2"
teacher_yaml() { printf 'ensemble:\n'; printf '  - %s\n' $TEACHER_MEMBERS; }
teacher() {   # write the teacher once its members are evaluated (atomically, once), then score it
  [ -n "${TEACHER:-}" ] && return 0
  for m in $TEACHER_MEMBERS; do all_evaluated "$OUT/$m" || return 0; done
  if [ ! -f "$OUT/teacher.yaml" ] && mkdir "$OUT/teacher.claim" 2>/dev/null; then
    atomic_output "$OUT/teacher.yaml" teacher_yaml
    rmdir "$OUT/teacher.claim"
  fi
  [ -f "$OUT/teacher.yaml" ] && once "$OUT" "$OUT/teacher-eval/*/report.json" teacher-eval \
    eval 'sceneshift evaluate "$OUT/teacher.yaml" > "$OUT/teacher.log" 2>&1'
  return 0
}
# Every lane takes the teacher's members first, then the students (once the teacher exists), then the rest.
lane() { worker $PLAIN_FIRST; teacher; worker $STUDENTS $PLAIN; teacher; worker $STUDENTS; }
PLAIN_FIRST="cp_resnet_dir_fms:0 cp_resnet_fms:0 cp_resnet_dir:0"
for _ in $(seq "${LANES:-2}"); do lane & done; wait
for item in $PLAIN $STUDENTS; do     # what was asked for and is not evaluated (failed, claimed elsewhere, no teacher)
  job=${item%%:*}-s${item##*:}
  if wanted "$job" && ! all_evaluated "$OUT/$job"; then
    echo "not evaluated by this copy: $job (failed, run by another copy, or no teacher yet; see $OUT/$job.log)" >&2
  fi
done

# Tables: every row with its evaluated seeds, then the paired comparisons of the three-seed rows.
rows=()
for r in cp_resnet cp_resnet_fms cp_resnet_dir cp_resnet_dir_fms cp_resnet_kd; do
  runs=$(evaluated $(printf "$OUT/$r-s%s " $(seeds_of "$r")))
  if [ -n "$runs" ]; then rows+=("$r=$runs"); fi
done
if [ ${#rows[@]} -gt 0 ]; then python benchmarks/group_table.py "${rows[@]}" | tee "$OUT/table.md" || true; fi
for pair in "cp_resnet cp_resnet_dir_fms" "cp_resnet cp_resnet_dir" "cp_resnet_dir cp_resnet_dir_fms" \
            "cp_resnet_dir_fms cp_resnet_kd" "cp_resnet_fms cp_resnet_dir_fms"; do
  set -- $pair
  if all_evaluated "$OUT/$1"-s{0,1,2} "$OUT/$2"-s{0,1,2}; then
    python benchmarks/paired_seeds.py --a "$OUT/$1"-s{0,1,2} --b "$OUT/$2"-s{0,1,2} --names "$1" "$2" || echo "failed: $1 vs $2" >&2
  fi
done
# Band-wise matching on top of every evaluated run; its table; with − without, paired, per three-seed row.
rows=()
for r in cp_resnet cp_resnet_fms cp_resnet_dir cp_resnet_dir_fms cp_resnet_kd; do
  for s in $(seeds_of "$r"); do
    all_evaluated "$OUT/$r-s$s" || continue
    once "$OUT" "$OUT/$r-s$s/eval/*-bandwise/report.json" "$r-s$s-bandwise" \
      sceneshift evaluate "$OUT/$r-s$s" --adapt bandwise
  done
  all=($(printf "$OUT/$r-s%s " $(seeds_of "$r")))
  runs=$(adapted "${all[@]}")
  if [ -n "$runs" ]; then rows+=("$r + band-wise=$runs"); fi
  if all_with_report '*-bandwise' "${all[@]}"; then
    python benchmarks/paired_seeds.py --a "${all[@]}" --b "${all[@]}" \
      --split-b urban-mobile-evaluate-bandwise --names "$r" "$r + band-wise" || echo "failed: $r band-wise" >&2
  fi
done
if [ ${#rows[@]} -gt 0 ]; then
  python benchmarks/group_table.py --adapted "${rows[@]}" | tee "$OUT/table-bandwise.md" || true
fi
# Batch-norm statistics re-estimated on each unseen device (adabn), alone and after band-wise matching
# (bandwise+adabn), on every evaluated run; their tables; bandwise+adabn − bandwise, paired, per three-seed row.
for method in adabn bandwise+adabn; do
  rows=()
  for r in cp_resnet cp_resnet_fms cp_resnet_dir cp_resnet_dir_fms cp_resnet_kd; do
    for s in $(seeds_of "$r"); do
      all_evaluated "$OUT/$r-s$s" || continue
      once "$OUT" "$OUT/$r-s$s/eval/*-evaluate-$method/report.json" "$r-s$s-$method" \
        sceneshift evaluate "$OUT/$r-s$s" --adapt "$method"
    done
    all=($(printf "$OUT/$r-s%s " $(seeds_of "$r")))
    runs=$(with_report "*-evaluate-$method" "${all[@]}")
    if [ -n "$runs" ]; then rows+=("$r + $method=$runs"); fi
    if [ "$method" = bandwise+adabn ] && all_with_report "*-evaluate-$method" "${all[@]}" \
       && all_with_report '*-bandwise' "${all[@]}"; then
      python benchmarks/paired_seeds.py --a "${all[@]}" --b "${all[@]}" \
        --split urban-mobile-evaluate-bandwise --split-b urban-mobile-evaluate-bandwise+adabn \
        --names "$r + band-wise" "$r + bandwise+adabn" || echo "failed: $r bandwise+adabn" >&2
    fi
  done
  if [ ${#rows[@]} -gt 0 ]; then
    python benchmarks/group_table.py --report "urban-mobile-evaluate-$method" "${rows[@]}" \
      | tee "$OUT/table-$method.md" || true
  fi
done
# The two adaptations of the distilled runs compared on validation: it has no unseen device, so every
# non-source device of the validation split is adapted (--adapt-all) and stands in; paired over the seeds.
# (docs/beyond.md: on four run families this did not predict which adaptation helps on unseen devices.)
kd_all=($(printf "$OUT/cp_resnet_kd-s%s " $STUDENT_SEEDS))
for kd in "${kd_all[@]}"; do
  all_evaluated "$kd" || continue
  for method in bandwise bandwise+adabn; do
    once "$OUT" "$kd/eval/*-validate-$method-all/report.json" "$(basename "$kd")-validate-$method" \
      sceneshift evaluate "$kd" --split validate --adapt "$method" --adapt-all
  done
done
if all_with_report '*-validate-bandwise-all' "${kd_all[@]}" && all_with_report '*-validate-bandwise+adabn-all' "${kd_all[@]}"; then
  python benchmarks/paired_seeds.py --a "${kd_all[@]}" --b "${kd_all[@]}" --split urban-mobile-validate-bandwise-all \
    --split-b urban-mobile-validate-bandwise+adabn-all --names "band-wise (validation)" "bandwise+adabn (validation)" \
    | tee "$OUT/validate-adaptation.md" || echo "failed: validation choice of adaptation" >&2
fi
# int8_scored RUN MODEL [EXPORT OPTIONS]: RUN/model.MODEL.onnx exported once, then scored once
int8_scored() {
  local run=$1 model=$2 name; shift 2
  name=$(basename "$run")-$model
  once "$OUT" "$run/model.$model.onnx" "$name" sceneshift export "$run" "$@"
  [ -f "$run/model.$model.onnx" ] && once "$OUT" "$run/model.$model-eval/*/report.json" "$name-eval" \
    sceneshift evaluate "$run/model.$model.onnx"
  return 0
}
# The plain seed-0 run as one int8 file per unseen device, band-wise matching to that device built in
# (export --adapt bandwise --adapt-to its clips), scored on the device beside the PyTorch adaptation.
if all_evaluated "$OUT/cp_resnet-s0"; then
  int8_scored "$OUT/cp_resnet-s0" int8 --int8       # its source device in int8, the reference of the gap
  once "$OUT" "$OUT/cp_resnet-s0-adapted.md" cp_resnet-s0-adapted \
    atomic_output "$OUT/cp_resnet-s0-adapted.md" python benchmarks/adapted_export.py "$OUT/cp_resnet-s0" --int8 \
      --json "$OUT/cp_resnet-s0-adapted.json"
  cat "$OUT/cp_resnet-s0-adapted.md" 2>/dev/null || true
fi
# int8 (post-training) of the undistilled DIR + FMS seed-0 run too: the recipe's network without a teacher
all_evaluated "$OUT/cp_resnet_dir_fms-s0" && int8_scored "$OUT/cp_resnet_dir_fms-s0" int8 --int8
# The distilled runs, the steadiest row with band-wise matching, as int8 files: plain (source-device
# accuracy) and adapted to each unseen device (the deployable form of "distilled + band-wise").
for s in $STUDENT_SEEDS; do
  kd="$OUT/cp_resnet_kd-s$s"
  all_evaluated "$kd" || continue
  int8_scored "$kd" int8 --int8
  once "$OUT" "$kd-adapted.md" "cp_resnet_kd-s$s-adapted" \
    atomic_output "$kd-adapted.md" python benchmarks/adapted_export.py "$kd" --int8 --json "$kd-adapted.json"
  cat "$kd-adapted.md" 2>/dev/null || true
  once "$OUT" "$kd-adapted-bandwise+adabn.md" "cp_resnet_kd-s$s-adapted-bandwise+adabn" \
    atomic_output "$kd-adapted-bandwise+adabn.md" python benchmarks/adapted_export.py "$kd" --int8 --method bandwise+adabn \
      --json "$kd-adapted-bandwise+adabn.json"
  cat "$kd-adapted-bandwise+adabn.md" 2>/dev/null || true
done
# The deployed files' source − unseen gap over the distilled seeds, with both adaptations (once all are exported)
for method in bandwise bandwise+adabn; do
  python benchmarks/deployed_gap.py "${kd_all[@]}" --method "$method" || true
done
# 3 epochs of QAT on the distilled seed-0 run, and its inference speed.
kd="$OUT/cp_resnet_kd-s0"
if all_evaluated "$kd"; then
  int8_scored "$kd" qat.int8 --qat 3
  python benchmarks/inference_speed.py "$kd" || echo "failed: inference_speed" >&2
fi
