#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan + coverage, in
# build-asan, shared with scripts/sanitize.sh) and runs each for SECONDS
# (default 30) on a copy of its seed corpus fuzz/corpus/<target>/.
# A crash, sanitizer report, timeout or leak fails the script; the input that
# triggered it is left in build-asan/fuzz/findings/<target>/ (turn it into a
# regression test, then fix). Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_scenario fuzz_profile fuzz_import)
build=${TRAINSIM_ASAN_BUILD:-build-asan}

if [ "${TRAINSIM_SKIP_BUILD:-0}" != 1 ]; then
  cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_FLAGS_RELEASE="-O1 -gline-tables-only -DNDEBUG" -DTRAINSIM_CUDA=OFF \
    -DTRAINSIM_SANITIZE=ON -DTRAINSIM_FUZZ=ON >/dev/null
  cmake --build "$build" -j2 --target "${targets[@]}"
fi

status=0
for t in "${targets[@]}"; do
  work="$build/fuzz/work/$t" findings="$build/fuzz/findings/$t"
  rm -rf "$work" && mkdir -p "$work" "$findings"
  cp fuzz/corpus/"$t"/* "$work"/
  echo "fuzz: $t for ${seconds}s"
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: memory
  # blow-ups are findings too. UBSan already aborts (-fno-sanitize-recover).
  if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
      "$build/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
      -dict=fuzz/json.dict -artifact_prefix="$findings/" -print_final_stats=1 "$work" \
      >"$build/fuzz/$t.log" 2>&1; then
    echo "fuzz: $t FAILED (log: $build/fuzz/$t.log, inputs: $findings/)"
    tail -40 "$build/fuzz/$t.log"
    status=1
  else
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$build/fuzz/$t.log" | tr '\n' ' '
    echo
  fi
done
exit $status
