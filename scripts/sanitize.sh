#!/usr/bin/env bash
# The test suite a second time under AddressSanitizer + UndefinedBehaviorSanitizer
# (clang, build-asan, -O1, CUDA off, undefined behaviour aborts), every shipped
# scenario simulated under them, then each fuzz target briefly. CI runs this
# after the normal build (README test command). Usage: scripts/sanitize.sh [FUZZ_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds=${1:-30}
build=build-asan
start=$(date +%s)
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE="-O1 -gline-tables-only -DNDEBUG" -DTRAINSIM_CUDA=OFF \
  -DTRAINSIM_SANITIZE=ON -DTRAINSIM_FUZZ=ON >/dev/null
cmake --build "$build" -j2
built=$(date +%s)
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Tests labelled `slow_under_asan` are skipped here (each says why in tests/).
# app.plan_mpi is left to the normal build: it runs OpenMPI's runtime, which
# is not instrumented and allocates at MPI_Init what it never frees.
ctest --test-dir "$build" --output-on-failure -j2 -LE slow_under_asan -E '^app\.plan_mpi$'

tested=$(date +%s)
# The shipped scenarios (bench/scenarios are benchmarks of up to 262,144 GPUs,
# run unsanitized by bench/cluster_scaling.sh).
for s in scenarios/*.json; do
  echo "sanitize: simulate $s"
  "$build/trainsim" simulate "$s" --quiet --report "$build/sanitize-report.json"
done
rm -f "$build/sanitize-report.json"
simulated=$(date +%s)
TRAINSIM_SKIP_BUILD=1 scripts/fuzz.sh "$fuzz_seconds"
echo "sanitize: build $((built - start)) s, tests $((tested - built)) s, scenarios $((simulated - tested)) s," \
  "fuzz $(($(date +%s) - simulated)) s"
