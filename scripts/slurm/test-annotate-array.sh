#!/usr/bin/env bash
# The Slurm path, for real: brings up a single-node Slurm on this machine (local-cluster.sh),
# submits annotate-array.sbatch as a 2-task array over the real clips of ../shared/data/videos
# plus one damaged copy, waits for it, and checks that every good video was annotated exactly
# once, the damaged one is reported failed, a resubmission skips everything, and the cohort
# report covers every video. Needs root, slurm-wlm and munge (scripts/setup.sh) and the release
# binary. Fails loudly when any of these is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
bin=$repo/target/release/emolens
videos=$repo/../shared/data/videos
[ -x "$bin" ] || { echo "FAIL: $bin missing: build it (scripts/setup.sh)" >&2; exit 1; }
[ -d "$videos" ] || { echo "FAIL: $videos missing: see ../shared/data/README.md" >&2; exit 1; }
. scripts/slurm/local-cluster.sh

work=$(mktemp -d /tmp/emolens-slurm-test.XXXXXX)
finish() { cluster_stop; rm -rf "$work"; }
trap finish EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
started=$(date +%s)

# The videos: every real clip, and a copy whose first 64 KiB are zeros (unreadable).
mkdir -p "$work/videos" "$work/logs"
good=()
while IFS= read -r clip; do
  good+=("$(basename "${clip%.*}")")
  echo "$clip" >> "$work/videos.txt"
done < <(find "$videos" -type f \( -name '*.mp4' -o -name '*.mov' \) | sort)
cp "$videos/pyfeat_single_face.mp4" "$work/videos/damaged.mp4"
chmod u+w "$work/videos/damaged.mp4"
dd if=/dev/zero of="$work/videos/damaged.mp4" bs=1024 count=64 conv=notrunc status=none
echo "videos/damaged.mp4" >> "$work/videos.txt"
echo "videos: ${#good[@]} real clips and one damaged copy"

cluster_start
submit() {
  sbatch --parsable --array=0-1 --cpus-per-task=1 --chdir="$work" --output="$work/logs/%A_%a.out" \
    --export=ALL,EMOLENS="$bin" scripts/slurm/annotate-array.sbatch "$work/videos.txt" "$work/out"
}
job=$(submit)
status=0
cluster_wait "$job" 600 || status=$?
echo "array job $job finished with exit status $status (4: a task had a failed video)"
[ "$status" = 4 ] || { cat "$work"/logs/*; fail "expected exit status 4, got $status"; }

for name in "${good[@]}"; do
  summary="$work/out/$name.summary.json"
  [ -f "$summary" ] || fail "$name: no summary"
  grep -q '"status": "done"' "$summary" || fail "$name: not done: $(cat "$summary")"
  [ -f "$work/out/$name.mp4" ] && [ -f "$work/out/$name.jsonl" ] || fail "$name: outputs missing"
  runs=$(cat "$work"/logs/*.out | grep -c -- "-> $work/out/$name.mp4:" || true)
  [ "$runs" = 1 ] || fail "$name: annotated $runs times, expected once"
done
grep -q '"status": "failed"' "$work/out/damaged.summary.json" || fail "damaged video not reported failed"
grep -h "damaged.mp4" "$work"/logs/*.out | grep -q "^failed" || fail "damaged video not in a task's table"
echo "every good video annotated exactly once; the damaged one reported failed"

# Submitted again: everything done is skipped (the damaged video fails again).
job=$(submit)
cluster_wait "$job" 600 || true
skipped=$(cat "$work"/logs/"$job"_*.out | grep -c "^skipped" || true)
[ "$skipped" = "${#good[@]}" ] || fail "resubmission skipped $skipped videos, expected ${#good[@]}"
echo "resubmitted: ${#good[@]} videos skipped"

# One cohort report over every video's records.
mapfile -t records < <(find "$work/out" -name '*.jsonl' | sort)
"$bin" report "${records[@]}" -o "$work/cohort" > "$work/cohort.log"
rows=$(($(wc -l < "$work/cohort/cohort.csv") - 1))
[ "$rows" = "${#good[@]}" ] || fail "cohort report has $rows videos, expected ${#good[@]}"
[ -f "$work/cohort/cohort.html" ] || fail "no cohort.html"
echo "cohort report: $rows videos"
echo "PASS: Slurm array test in $(($(date +%s) - started)) s"
