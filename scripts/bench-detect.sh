#!/usr/bin/env bash
# Face detection, measured: for each detector and setting, `emolens evaluate-faces` on the
# labelled photos of ../shared/data/faces (recall at IoU >= 0.4, false faces on the photos with
# people and on the dog photo, ms per photo), then `emolens annotate` on every clip of
# ../shared/data/videos (frames with a face, distinct face IDs, fps).
#   scripts/bench-detect.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/emolens
data=../shared/data
[ -x "$bin" ] || { echo "build first: scripts/setup.sh" >&2; exit 1; }
[ -f "$data/faces/boxes.csv" ] || { echo "$data/faces/boxes.csv: not found" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

settings=(
  "--detector yunet"
  "--detector yunet --detect-threshold 0.6"
  "--detector yunet --detect-threshold 0.85"
  "--detector yunet --detect-width 960"
  "--detector haar"
  "--detector haar --scale-factor 1.1 --min-neighbors 5 --min-face 24"
  "--detector haar --scale-factor 1.05 --min-neighbors 3 --min-face 24"
)

echo "== photos: $data/faces/boxes.csv (82 labelled faces in 14 photos, and dlib_dogs.jpg)"
for s in "${settings[@]}"; do
  # shellcheck disable=SC2086 # the settings are several flags
  "$bin" evaluate-faces --boxes "$data/faces/boxes.csv" $s --json "$out/recall.json" >/dev/null
  python3 - "$s" "$out/recall.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
print(f"{sys.argv[1]:<70} recall {r['found']}/{r['faces']} ({100 * r['found'] / r['faces']:.1f} %), "
      f"false faces {r['false_faces_people']} on people, {r['false_faces_no_people']} on dogs, "
      f"{r['ms_per_photo']:.1f} ms per photo")
PY
done

echo "== clips: $data/videos (frames with a face / frames; face IDs; fps of the run)"
mapfile -t clips < <(find "$data/videos" -type f \( -name '*.mp4' -o -name '*.mov' \) | sort)
for s in "${settings[@]}"; do
  echo "$s"
  for clip in "${clips[@]}"; do
    # shellcheck disable=SC2086
    summary=$("$bin" annotate --quiet $s "$clip" -o "$out/a.mp4" --json "$out/a.jsonl" 2>/dev/null | head -1)
    ids=$(python3 -c "import json,sys; print(len({json.loads(l)['id'] for l in open(sys.argv[1])}))" "$out/a.jsonl")
    printf '  %-40s %s; %s IDs\n' "${clip#"$data/videos/"}" \
      "$(echo "$summary" | grep -o '[0-9]* frames in [0-9.]* s ([0-9.]* fps); faces in [0-9]* frames ([0-9.]* %)')" "$ids"
  done
done
