#!/usr/bin/env bash
# Cost of `emolens annotate --slowmo F` in each --slowmo-frames mode, measured in one run against
# the same annotate run without slow motion and a plain x264 transcode of the clip.
#   [RUNS=3] [FACTOR=2] scripts/bench-slowmo.sh [VIDEO]
# Default VIDEO: the Pexels clip (640x360, 472 frames, with sound). Prints each time and the time
# slow motion adds as a multiple of the annotate time (the target for the default mode: <= 1).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
factor=${FACTOR:-2}
video=${1:-../shared/data/videos/pyfeat_WolfgangLanger_Pexels.mp4}
bin=target/release/emolens
[ -x "$bin" ] || { echo "build first: scripts/setup.sh" >&2; exit 1; }
[ -f "$video" ] || { echo "$video: not found" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
. scripts/bench-lib.sh

transcode=$(best ffmpeg -v error -y -i "$video" -c:v libx264 -preset veryfast -crf 20 -c:a copy "$out/plain.mp4")
annotate=$(best "$bin" annotate --quiet "$video" -o "$out/annotated.mp4")
printf 'clip: %s, --slowmo %s, best of %s runs\n' "$video" "$factor" "$runs"
printf '%-34s %6.2f s\n' "plain transcode (ffmpeg)" "$transcode" "annotate, no slow motion" "$annotate"
for mode in blend mci repeat; do
  slow=$(best "$bin" annotate --quiet "$video" -o "$out/annotated.mp4" --slowmo "$factor" --slowmo-frames "$mode")
  printf '%-34s %6.2f s  adds %.2fx the annotate time\n' "annotate --slowmo-frames $mode" "$slow" \
    "$(echo "($slow - $annotate) / $annotate" | bc -l)"
done
