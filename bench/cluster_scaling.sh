#!/usr/bin/env bash
# Benchmark: the cluster-wide execution against cluster size.
#
#   bench/cluster_scaling.sh [BUILD_DIR]          (default: build)
#
# Runs `trainsim simulate` on DeepSeek-V3 with the default scenario's layout
# (tp 1, pp 16, ep 64, DualPipe, 120 micro-batches per pipeline) at several
# cluster sizes, at collapsed and at full fidelity, one run at a time, and
# prints wall time, max RSS (from /usr/bin/time), RSS per simulated GPU,
# events, flows and events per second (from the report's
# cluster_simulation block). The scenarios are the default one with
# cluster.nodes, parallelism.dp and training.global_batch_size changed
# (global batch = 120 x dp); 16,384 GPUs is
# bench/scenarios/deepseek-v3-16384xH800.json.
#
# Environment:
#   SIZES       GPU counts to run, multiples of 256 (default
#               "256 512 1024 2048 4096 8192 16384"). Below 1,024 GPUs dp is
#               under 64, so ep becomes dp (ep 16 at 256 GPUs, 32 at 512):
#               more experts per GPU, a different per-GPU workload.
#   FIDELITIES  default "collapsed full"
#   TIMEOUT     seconds per run (default 900)
#   KEEP        a directory to keep the scenarios and reports in (default: a
#               temporary directory, removed at the end)
#   FABRIC      "default" (the default scenario's 8-plane fat-tree of 64-port
#               switches, up to 16,384 GPUs) or "radix256" (8 planes of
#               256-port switches, 2 tiers, up to 262,144 GPUs:
#               bench/scenarios/deepseek-v3-262144xH800.json with nodes, dp
#               and the global batch scaled). Large clusters:
#                 FABRIC=radix256 FIDELITIES=collapsed \
#                 SIZES="2048 16384 65536 131072 262144" bench/cluster_scaling.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
trainsim=$build/trainsim
sizes=${SIZES:-"256 512 1024 2048 4096 8192 16384"}
fidelities=${FIDELITIES:-"collapsed full"}
limit=${TIMEOUT:-900}
[[ -x $trainsim ]] || { echo "no $trainsim: build the trainsim target first" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "needs /usr/bin/time (GNU time)" >&2; exit 1; }

if [[ -n ${KEEP:-} ]]; then work=$KEEP; mkdir -p "$work"; else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi

base=$root/scenarios/deepseek-v3-pretrain.json
ep_for() { echo $(($1 / 16 < 64 ? $1 / 16 : 64)); }  # GPUS -> ep (dp when dp < 64)
scenario_r256() {  # GPUS -> the radix-256 scenario with that many GPUs
  local gpus=$1 f=$work/v3-r256-$1.json big=$root/bench/scenarios/deepseek-v3-262144xH800.json
  if ((gpus == 262144)); then echo "$big"; return; fi
  sed -e "s/\"nodes\": 32768/\"nodes\": $((gpus / 8))/" -e "s/\"dp\": 16384/\"dp\": $((gpus / 16))/" \
      -e "s/\"ep\": 64/\"ep\": $(ep_for "$gpus")/" \
      -e "s/\"global_batch_size\": 1966080/\"global_batch_size\": $((120 * gpus / 16))/" \
      -e "s/262144xH800/${gpus}xH800/" "$big" > "$f"
  echo "$f"
}
scenario_for() {  # GPUS -> path of a scenario with that many GPUs
  local gpus=$1 nodes=$(($1 / 8)) dp=$(($1 / 16)) ep
  if [[ ${FABRIC:-default} == radix256 ]]; then scenario_r256 "$gpus"; return; fi
  ep=$(ep_for "$gpus")
  if ((gpus == 2048)); then echo "$base"; return; fi
  if ((gpus == 16384)); then echo "$root/bench/scenarios/deepseek-v3-16384xH800.json"; return; fi
  local f=$work/v3-$gpus.json
  sed -e "s/\"nodes\": 256/\"nodes\": $nodes/" -e "s/\"dp\": 128/\"dp\": $dp/" \
      -e "s/\"ep\": 64/\"ep\": $ep/" -e "s/\"global_batch_size\": 15360/\"global_batch_size\": $((120 * dp))/" \
      -e "s/2048xH800/${gpus}xH800/" "$base" > "$f"
  echo "$f"
}
field() { grep -o "\"$1\": *[0-9.e+-]*" "$2" | head -1 | sed 's/.*: *//'; }

echo "# $(date -u '+%F %T') UTC, $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# trainsim: $trainsim, fabric: ${FABRIC:-default}"
printf '| GPUs | ep | fidelity | simulated GPUs | wall s | max RSS MiB | RSS KiB / simulated GPU | RSS KiB / cluster GPU | events | flows | events/s | step time s |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|---|\n'
for gpus in $sizes; do
  sc=$(scenario_for "$gpus")
  for fid in $fidelities; do
    rep=$work/report-$gpus-$fid.json tim=$work/time-$gpus-$fid.txt
    if ! timeout "$limit" /usr/bin/time -f '%e %M' -o "$tim" \
         "$trainsim" simulate "$sc" --fidelity "$fid" --quiet --report "$rep" > "$work/out-$gpus-$fid.txt" 2>&1; then
      printf '| %s | %s | %s | failed or over %s s: %s ||||||||\n' "$gpus" "$(ep_for "$gpus")" "$fid" "$limit" "$(tail -1 "$work/out-$gpus-$fid.txt")"
      continue
    fi
    read -r wall rss_kb < <(tail -1 "$tim")
    sim=$(field simulated_gpus "$rep") ev=$(field events "$rep") fl=$(field flows "$rep") st=$(field step_time_s "$rep")
    awk -v g="$gpus" -v ep="$(ep_for "$gpus")" -v f="$fid" -v s="$sim" -v w="$wall" -v r="$rss_kb" -v e="$ev" -v fl="$fl" -v st="$st" 'BEGIN {
      printf "| %d | %d | %s | %d | %.2f | %.1f | %.1f | %.2f | %d | %d | %.2f M | %.4f |\n", g, ep, f, s, w, r / 1024, r / s, r / g, e, fl, (w > 0 ? e / w / 1e6 : 0), st }'
  done
done
