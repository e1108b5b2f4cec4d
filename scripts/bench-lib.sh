# Shared by the bench-*.sh scripts (sourced): the best wall time of several runs.

# The best wall time in seconds of running "$@" $runs times (output discarded): the best run
# filters out other load on the machine.
best() {
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
