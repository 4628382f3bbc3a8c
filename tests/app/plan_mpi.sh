#!/usr/bin/env bash
# `mpirun -n 2 trainsim plan` on loopback writes the same bytes as one
# process. Exit 77 (CTest SKIP_RETURN_CODE) when mpirun is absent or the
# binary was built without MPI.
set -euo pipefail
trainsim=$1
mpirun=${2:-}
scenario=$(dirname "$0")/data/plan-mini.json
if [ -z "$mpirun" ] || ! command -v "$mpirun" >/dev/null; then
  echo "SKIP: mpirun not found (install openmpi-bin libopenmpi-dev: scripts/setup.sh)"; exit 77
fi
if ! "$trainsim" plan --help | grep -q "MPI: built in"; then
  echo "SKIP: trainsim was built without MPI"; exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$trainsim" plan "$scenario" --top 3 --quiet --threads 1 --out "$dir/one.json"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=lo
export OMPI_MCA_plm_rsh_agent=false
"$mpirun" -n 2 --oversubscribe "$trainsim" plan "$scenario" --top 3 --quiet --threads 1 --out "$dir/mpi.json"
cmp "$dir/one.json" "$dir/mpi.json"
echo "mpirun -n 2: byte-identical plan"
