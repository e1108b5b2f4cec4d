# shellcheck shell=bash
# A throw-away, single-node Slurm cluster (munged + slurmctld + slurmd) for integration tests.
# Source it, do not run it:
#
#   . scripts/slurm/local-cluster.sh
#   trap cluster_stop EXIT
#   cluster_start
#   sbatch --wait --array=0-2 --output="$out/%A_%a.out" --wrap '...'
#
# cluster_start puts everything (munge key and socket, slurm.conf, state, spool, pid and log files)
# in a fresh mktemp -d directory, exports SLURM_CONF so sbatch/squeue/sinfo/scontrol/scancel talk
# to this cluster only, starts the three daemons on free high ports, and waits (up to
# CLUSTER_START_TIMEOUT seconds, default 60) until the node is idle. It needs root (slurmd runs
# jobs as the submitting user) and the Debian packages slurm-wlm and munge (scripts/setup.sh).
# The node is $(hostname -s) with CPUs=$(nproc) and select/cons_tres + CR_Core, so single-CPU
# array tasks run side by side (2 CPUs: 2 at once); the only partition is `debug` (default,
# no time limit). No accounting: sacct does not work, squeue/scontrol show job do.
#
# cluster_stop cancels whatever is still queued or running, stops the daemons by the PIDs from
# their pid files (TERM, up to 10 s, then KILL), and removes the directory. It never fails and is
# safe to call twice, from an EXIT trap, or after a failed cluster_start. CLUSTER_KEEP=1 keeps the
# directory (its path is printed) for post-mortems.
#
# cluster_wait JOBID waits for a job (all array tasks) with 0.5 s polling and returns the highest
# task exit code; `sbatch --wait` does the same but polls at 2, 8, then every 32 s.
# MinJobAge is 300 s (CLUSTER_MIN_JOB_AGE overrides): do not lower it below ~18 s to speed up
# sbatch --wait, as finished records are then purged before sbatch sees them and a failed array
# task can be reported as exit status 0.
#
# After cluster_start: cluster_dir (the temp dir), cluster_node (the node name), SLURM_CONF.
# Everything here is prefixed cluster_ and is safe under set -euo pipefail.

cluster_dir=""
cluster_node=""
cluster_pids=()  # "name:pid" entries, in start order

cluster_say() { printf 'local-cluster: %s\n' "$*" >&2; }

# A TCP port in 20000..59999 that nothing listens on (from /proc/net/tcp{,6}, no tools needed).
cluster_free_port() {
  local port used="" hex i
  for hex in $(awk 'FNR > 1 && $4 == "0A" { n = split($2, a, ":"); print a[n] }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null || true); do
    used+="$((16#$hex))"$'\n'
  done
  for i in $(seq 1 200); do
    port=$((20000 + RANDOM % 40000))
    if ! grep -qx "$port" <<<"$used" && [ "$port" != "${1:-}" ]; then
      echo "$port"
      return 0
    fi
  done
  cluster_say "no free TCP port found"
  return 1
}

# Is PID alive (not a zombie) and is its command NAME? Guards against PID reuse.
cluster_pid_is() {
  local pid=$1 name=$2 state comm
  [ -r "/proc/$pid/stat" ] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != "Z" ] && [ "$comm" = "$name" ]
}

# Wait up to 15 s for the daemon NAME to write PIDFILE, then record its PID.
cluster_record_pid() {
  local name=$1 pidfile=$2 pid="" i
  for i in $(seq 1 150); do
    if [ -s "$pidfile" ]; then
      pid=$(tr -dc '0-9' <"$pidfile")
      if [ -n "$pid" ] && cluster_pid_is "$pid" "$name"; then
        cluster_pids+=("$name:$pid")
        return 0
      fi
    fi
    sleep 0.1
  done
  cluster_say "$name did not start (no live PID in $pidfile)"
  return 1
}

cluster_dump_logs() {
  local f
  [ -n "$cluster_dir" ] && [ -d "$cluster_dir" ] || return 0
  for f in "$cluster_dir"/log/*.log; do
    [ -f "$f" ] || continue
    printf '===== %s (last 40 lines) =====\n' "$f" >&2
    tail -n 40 "$f" >&2 || true
  done
  if [ -n "${SLURM_CONF:-}" ] && command -v scontrol >/dev/null; then
    printf '===== scontrol show node =====\n' >&2
    timeout 10 scontrol show node >&2 2>&1 || true
  fi
}

cluster_fail() {
  cluster_say "ERROR: $*"
  cluster_dump_logs
  cluster_stop
  return 1
}

cluster_start() {
  local bin state i ctld_port slurmd_port cpus mem_mb key
  if [ -n "$cluster_dir" ]; then
    cluster_say "ERROR: a cluster is already running in $cluster_dir (call cluster_stop first)"
    return 1
  fi
  for bin in munged slurmctld slurmd sbatch sinfo scontrol scancel squeue; do
    if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
      cluster_say "ERROR: $bin not found: install Slurm and munge by running scripts/setup.sh"
      return 1
    fi
  done
  if [ "$(id -u)" -ne 0 ]; then
    cluster_say "ERROR: the local Slurm cluster must be started as root (slurmd runs the jobs)"
    return 1
  fi
  local started=$SECONDS
  cluster_node=$(hostname -s)
  cpus=$(nproc)
  # RealMemory must not exceed what slurmd finds, or the node is drained.
  mem_mb=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
  [ "$mem_mb" -gt 2000 ] && mem_mb=2000
  cluster_dir=$(mktemp -d "${TMPDIR:-/tmp}/emolens-slurm.XXXXXX")
  chmod 0700 "$cluster_dir"
  mkdir -p "$cluster_dir"/{munge,state,spool,log,run}
  chmod 0700 "$cluster_dir"/{munge,state,spool,log,run}

  # munge: key, socket, pid, log and seed all in the temp dir.
  key="$cluster_dir/munge/munge.key"
  if command -v mungekey >/dev/null 2>&1 || [ -x /usr/sbin/mungekey ]; then
    PATH="$PATH:/usr/sbin" mungekey --create --keyfile="$key" 2>/dev/null ||
      dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
  else
    dd if=/dev/urandom of="$key" bs=1 count=1024 status=none
  fi
  chown root:root "$key"
  chmod 0400 "$key"
  local sock="$cluster_dir/munge/munge.socket"
  PATH="$PATH:/usr/sbin" munged --force --socket="$sock" --key-file="$key" \
    --pid-file="$cluster_dir/run/munged.pid" --log-file="$cluster_dir/log/munged.log" \
    --seed-file="$cluster_dir/munge/munged.seed" >>"$cluster_dir/log/munged.log" 2>&1 </dev/null ||
    { cluster_fail "munged failed to start"; return 1; }
  cluster_record_pid munged "$cluster_dir/run/munged.pid" || { cluster_fail "munged is not running"; return 1; }

  ctld_port=$(cluster_free_port) || { cluster_fail "no port for slurmctld"; return 1; }
  slurmd_port=$(cluster_free_port "$ctld_port") || { cluster_fail "no port for slurmd"; return 1; }
  cat >"$cluster_dir/slurm.conf" <<EOF
# Generated by scripts/slurm/local-cluster.sh; removed by cluster_stop.
ClusterName=emolens-test
SlurmctldHost=${cluster_node}(127.0.0.1)
SlurmctldPort=${ctld_port}
SlurmdPort=${slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=${sock}
CredType=cred/munge
StateSaveLocation=${cluster_dir}/state
SlurmdSpoolDir=${cluster_dir}/spool
SlurmctldPidFile=${cluster_dir}/run/slurmctld.pid
SlurmdPidFile=${cluster_dir}/run/slurmd.pid
SlurmctldLogFile=${cluster_dir}/log/slurmctld.log
SlurmdLogFile=${cluster_dir}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
InactiveLimit=0
KillWait=5
MinJobAge=${CLUSTER_MIN_JOB_AGE:-300}
SlurmctldTimeout=30
SlurmdTimeout=60
MessageTimeout=10
NodeName=${cluster_node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=debug Nodes=${cluster_node} Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$cluster_dir/slurm.conf"

  # -i: ignore state files (there are none; a fresh StateSaveLocation each time).
  PATH="$PATH:/usr/sbin" slurmctld -i -f "$SLURM_CONF" >>"$cluster_dir/log/slurmctld.log" 2>&1 </dev/null ||
    { cluster_fail "slurmctld failed to start"; return 1; }
  cluster_record_pid slurmctld "$cluster_dir/run/slurmctld.pid" || { cluster_fail "slurmctld is not running"; return 1; }
  PATH="$PATH:/usr/sbin" slurmd -f "$SLURM_CONF" -N "$cluster_node" >>"$cluster_dir/log/slurmd.log" 2>&1 </dev/null ||
    { cluster_fail "slurmd failed to start"; return 1; }
  cluster_record_pid slurmd "$cluster_dir/run/slurmd.pid" || { cluster_fail "slurmd is not running"; return 1; }

  local timeout=${CLUSTER_START_TIMEOUT:-60}
  state=""
  for i in $(seq 1 $((timeout * 2))); do
    state=$(timeout 5 sinfo -h -n "$cluster_node" -o %T 2>/dev/null | head -n 1 || true)
    case "$state" in
      idle) break ;;
      down* | drain* | fail*)
        timeout 5 scontrol update nodename="$cluster_node" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  if [ "$state" != idle ]; then
    cluster_fail "node $cluster_node is not idle after ${timeout}s (state: '${state:-no answer}')"
    return 1
  fi
  cluster_say "up in $((SECONDS - started))s: node $cluster_node ($cpus CPUs), partition debug, SLURM_CONF=$SLURM_CONF"
}

# cluster_wait JOBID [TIMEOUT_S]: wait until every task of the job has finished, polling every 0.5 s,
# and return the highest task exit code (like sbatch --wait), 128+N for a task killed by signal N,
# 1 for a task that ended CANCELLED/TIMEOUT/NODE_FAIL/... with exit code 0, and 124 on timeout.
# Faster than sbatch --wait, which polls at 2, 8, then 32 s. Use: id=$(sbatch --parsable ...).
cluster_wait() {
  local job=${1%%;*} limit=${2:-0} started=$SECONDS info ec=0 line state code sig
  while :; do
    info=$(timeout 10 scontrol -o show job "$job" 2>/dev/null) ||
      { cluster_say "cluster_wait: job $job not found"; return 1; }
    grep -qvE 'JobState=(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|PREEMPTED|BOOT_FAIL|DEADLINE|OUT_OF_MEMORY) ' \
      <<<"$info" || break
    if [ "$limit" -gt 0 ] && [ $((SECONDS - started)) -ge "$limit" ]; then
      cluster_say "cluster_wait: job $job still running after ${limit}s"
      return 124
    fi
    sleep 0.5
  done
  while IFS= read -r line; do
    state=$(grep -o 'JobState=[A-Z_]*' <<<"$line" | head -n 1)
    code=$(grep -o ' ExitCode=[0-9]*:[0-9]*' <<<"$line" | head -n 1)
    code=${code#*=}
    sig=${code#*:}
    code=${code%:*}
    [ "${sig:-0}" -ne 0 ] && code=$((128 + sig))
    [ "${code:-0}" -eq 0 ] && [ "$state" != JobState=COMPLETED ] && code=1
    [ "${code:-0}" -gt "$ec" ] && ec=$code
  done <<<"$info"
  return "$ec"
}

# Stop one daemon: TERM, wait up to 10 s, then KILL. Only the recorded PID, and only if it still
# is that daemon.
cluster_stop_pid() {
  local name=$1 pid=$2 i
  cluster_pid_is "$pid" "$name" || return 0
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    cluster_pid_is "$pid" "$name" || return 0
    sleep 0.1
  done
  cluster_say "$name ($pid) ignored SIGTERM for 10s; sending SIGKILL"
  kill -9 "$pid" 2>/dev/null || true
  for i in $(seq 1 20); do
    cluster_pid_is "$pid" "$name" || return 0
    sleep 0.1
  done
  cluster_say "WARNING: $name ($pid) is still running"
}

cluster_stop() {
  local i entry
  [ -n "$cluster_dir" ] || return 0
  # Cancel leftover jobs so slurmstepd and job processes do not outlive the cluster.
  if [ -n "${SLURM_CONF:-}" ] && [ "$SLURM_CONF" = "$cluster_dir/slurm.conf" ] &&
    [ -n "$(timeout 5 squeue -h -o %i 2>/dev/null || true)" ]; then
    timeout 5 scancel --full --user="$(id -un)" >/dev/null 2>&1 || true
    for i in $(seq 1 50); do
      [ -z "$(timeout 5 squeue -h -t running,completing,pending -o %i 2>/dev/null || true)" ] && break
      sleep 0.2
    done
  fi
  # slurmd first (it would re-register), then slurmctld, then munged.
  for ((i = ${#cluster_pids[@]} - 1; i >= 0; i--)); do
    entry=${cluster_pids[$i]}
    cluster_stop_pid "${entry%%:*}" "${entry##*:}" || true
  done
  cluster_pids=()
  if [ "${CLUSTER_KEEP:-0}" = 1 ]; then
    cluster_say "kept $cluster_dir (CLUSTER_KEEP=1)"
  else
    rm -rf "$cluster_dir" || true
  fi
  if [ "${SLURM_CONF:-}" = "$cluster_dir/slurm.conf" ]; then unset SLURM_CONF; fi
  cluster_dir=""
  cluster_node=""
  return 0
}
