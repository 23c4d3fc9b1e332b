# Sourced by the benchmark job scripts: one way to bring a run folder to "evaluated", whatever state
# an earlier, interrupted invocation left it in.
#   train_job RUN RECIPE [OVERRIDES...]   -> RUN/eval/*/report.json; log in RUN.log; 1 if it failed
# Evaluated: kept. Trained or checkpointed (summary.json / last.ckpt): `sceneshift train --resume`
# (which only evaluates a finished run). A folder that failed before its first checkpoint is reused
# by a fresh `sceneshift train`. Anything else: a fresh run.
train_job() {
  local run=$1 recipe=$2; shift 2
  compgen -G "$run/eval/*/report.json" > /dev/null && return 0
  if [ -f "$run/summary.json" ] || [ -f "$run/checkpoints/last.ckpt" ]; then
    sceneshift train --resume --out "$run" >> "$run.log" 2>&1 && return 0
  else
    sceneshift train "$recipe" --out "$run" "$@" > "$run.log" 2>&1 && return 0
  fi
  echo "failed: $run (see $run.log)" >&2
  return 1
}

# with_report FOLDER_GLOB RUN...: the given runs that have RUN/eval/FOLDER_GLOB/report.json, comma-separated
with_report() {
  local r glob=$1 out=(); shift
  for r in "$@"; do compgen -G "$r/eval/$glob/report.json" > /dev/null && out+=("$r"); done
  (IFS=,; echo "${out[*]}")
}
# evaluated RUN...: the runs with an evaluation report; adapted RUN...: with a band-wise adapted one
evaluated() { with_report '*' "$@"; }
adapted() { with_report '*-bandwise' "$@"; }

# claimed_train_job RUN RECIPE [OVERRIDES...]: train_job, unless another invocation holds RUN.claim (a folder
# that exists while the job runs, so queues can be rerun or run twice at once; delete a stale one after a crash)
claimed_train_job() {
  mkdir "$1.claim" 2>/dev/null || return 0
  train_job "$@" || true
  rmdir "$1.claim"
}

# all_evaluated RUN...: true when every given run has an evaluation report
all_evaluated() { all_with_report '*' "$@"; }
# all_with_report FOLDER_GLOB RUN...: true when every given run has RUN/eval/FOLDER_GLOB/report.json
all_with_report() {
  local r glob=$1; shift
  for r in "$@"; do compgen -G "$r/eval/$glob/report.json" > /dev/null || return 1; done
}

# atomic_output FILE CMD...: CMD's standard output becomes FILE only if CMD succeeds (a per-process temporary
# file, then a rename), so an interrupted or concurrent step never leaves a partial FILE
atomic_output() {
  local file=$1 rc=0; shift
  "$@" > "$file.tmp.$$" && mv "$file.tmp.$$" "$file" && return 0 || rc=$?
  rm -f "$file.tmp.$$"
  return "$rc"
}

# same_schedule OUT EPOCHS: refuse (exit 2) when OUT already holds runs of another epoch count, so a queue
# rerun with a different EPOCHS never mixes schedules in one table (nor with runs made before OUT/epochs existed);
# records EPOCHS in OUT/epochs (once, atomically)
same_schedule() {
  if [ ! -f "$1/epochs" ] && compgen -G "$1/*/config.yaml" > /dev/null; then
    echo "$1 holds runs of an unknown schedule (no $1/epochs); give another folder" >&2
    exit 2
  fi
  if [ -f "$1/epochs" ]; then
    [ "$(cat "$1/epochs")" = "$2" ] && return 0
    echo "$1 holds runs of schedule '$(cat "$1/epochs")' (epochs and overrides); give another folder for '$2'" >&2
    exit 2
  fi
  atomic_output "$1/epochs" echo "$2"
}

# once DIR MARKER_GLOB NAME CMD...: run CMD unless a file matches MARKER_GLOB or another invocation holds
# DIR/NAME.claim (an analysis step done once across copies of a queue); a failure is reported, not fatal
once() {
  local dir=$1 marker=$2 name=$3; shift 3
  compgen -G "$marker" > /dev/null && return 0
  mkdir "$dir/$name.claim" 2>/dev/null || { echo "$name: running in another copy (or stale $dir/$name.claim), skipped"; return 0; }
  "$@" || echo "failed: $name" >&2
  rmdir "$dir/$name.claim"
}
