#!/usr/bin/env bash
# Speed of `emolens annotate` against a plain x264 transcode of the same clip with the same encoder
# settings, measured in one run. Prints both times, both frame rates and their ratio.
#   [RUNS=3] scripts/bench-annotate.sh [VIDEO...]
# Default VIDEOs: the Pexels clip (640x360, one face) and multiface_pan_1080p.mp4 (1920x1080,
# 15 to 20 faces) of ../shared/data/videos. The best of RUNS runs is reported for each, which
# filters out other load on the machine. Extra annotate flags can be given in ANNOTATE_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
if [ $# -eq 0 ]; then
  set -- ../shared/data/videos/pyfeat_WolfgangLanger_Pexels.mp4 ../shared/data/videos/multiface_pan_1080p.mp4
fi
preset=veryfast
crf=20
bin=target/release/emolens
[ -x "$bin" ] || { echo "build first: scripts/setup.sh" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

. scripts/bench-lib.sh

for video in "$@"; do
  [ -f "$video" ] || { echo "$video: not found" >&2; exit 1; }
  frames=$(ffprobe -v error -select_streams v -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$video")
  transcode=$(best ffmpeg -v error -y -i "$video" -c:v libx264 -preset "$preset" -crf "$crf" -c:a copy "$out/plain.mp4")
  annotate=$(best "$bin" annotate --quiet ${ANNOTATE_FLAGS:-} --preset "$preset" --crf "$crf" "$video" -o "$out/annotated.mp4")
  printf 'clip: %s (%s frames), x264 preset %s crf %s, best of %s runs\n' "$video" "$frames" "$preset" "$crf" "$runs"
  printf 'plain transcode (ffmpeg): %6.2f s  %7.1f fps\n' "$transcode" "$(echo "$frames / $transcode" | bc -l)"
  printf 'emolens annotate:         %6.2f s  %7.1f fps\n' "$annotate" "$(echo "$frames / $annotate" | bc -l)"
  printf 'annotate speed / transcode speed: %.2f\n' "$(echo "$transcode / $annotate" | bc -l)"
done
