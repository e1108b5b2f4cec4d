#!/usr/bin/env bash
# Speed of `emolens annotate` against a plain x264 transcode of the same clip with the same encoder
# settings, measured in one run. Prints both times, both frame rates and their ratio.
#   scripts/bench-annotate.sh [VIDEO] [RUNS]
# Default VIDEO: ../shared/data/videos/pyfeat_WolfgangLanger_Pexels.mp4; RUNS (default 3): the
# best of that many runs is reported for each, which filters out other load on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
video=${1:-../shared/data/videos/pyfeat_WolfgangLanger_Pexels.mp4}
runs=${2:-3}
preset=veryfast
crf=20
bin=target/release/emolens
[ -x "$bin" ] || { echo "build first: scripts/setup.sh" >&2; exit 1; }
[ -f "$video" ] || { echo "$video: not found" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
frames=$(ffprobe -v error -select_streams v -count_packets -show_entries stream=nb_read_packets -of csv=p=0 "$video")

best() { # best wall time in seconds of running "$@" $runs times
  local best=""
  for _ in $(seq "$runs"); do
    local start end t
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    t=$(echo "$end - $start" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
  done
  echo "$best"
}

transcode=$(best ffmpeg -v error -y -i "$video" -c:v libx264 -preset "$preset" -crf "$crf" -c:a copy "$out/plain.mp4")
annotate=$(best "$bin" annotate --quiet --preset "$preset" --crf "$crf" "$video" -o "$out/annotated.mp4")
printf 'clip: %s (%s frames), x264 preset %s crf %s, best of %s runs\n' "$video" "$frames" "$preset" "$crf" "$runs"
printf 'plain transcode (ffmpeg): %6.2f s  %7.1f fps\n' "$transcode" "$(echo "$frames / $transcode" | bc -l)"
printf 'emolens annotate:         %6.2f s  %7.1f fps\n' "$annotate" "$(echo "$frames / $annotate" | bc -l)"
printf 'annotate speed / transcode speed: %.2f\n' "$(echo "$transcode / $annotate" | bc -l)"
