#!/usr/bin/env bash
# Installs the Debian packages trainsim builds with, if any is missing.
# Idempotent and quiet when everything is already there.
set -euo pipefail
pkgs=(cmake g++ make libboost-graph-dev libeigen3-dev libfmt-dev libcli11-dev nlohmann-json3-dev doctest-dev
      libprotobuf-dev protobuf-compiler
      chromium python3  # the browser test of the HTML report (tests/browser/)
      openmpi-bin libopenmpi-dev)  # MPI: optional for the build, used by `mpirun trainsim plan` and its test
# clang and its runtimes (libFuzzer, ASan, UBSan): scripts/sanitize.sh and scripts/fuzz.sh.
pkgs+=(clang libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
