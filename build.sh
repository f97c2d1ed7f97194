#!/usr/bin/env bash
# ringpipe's set-up on a fresh Debian 12 machine, in two commands:
#   ./build.sh run    install what is missing, build, run the default pipeline
#   ./build.sh test   install what is missing, build, run the whole test suite
# `test` builds the `test` preset: the release optimisation (-O2) without
# debug info or link-time optimisation, because on a 2-core CI machine an LTO
# link of each of ~45 test programs, then debug info (a third of each compile
# and most of each link), were most of the run; it compiles in the test-only
# crash points, so the quarantine tests run in the suite and no second (dev)
# build is made for them. `ctest --preset release` runs the suite on the
# shipped LTO build, without crash points.
# Other verbs: deps (install only), build [preset], asan, tsan (suite under a sanitizer),
# ring-sanitized (the ring's suites under both; `test` runs it),
# fuzz (parsers and file formats under libFuzzer; `test` runs it first), hooks
# (the quarantine tests alone, in the dev build; `test` runs them in its suite).
set -euo pipefail
cd "$(dirname "$0")"

DEBS=(build-essential cmake ninja-build pkg-config git
      libboost-dev libconcurrentqueue-dev prometheus-cpp-dev libyaml-cpp-dev
      libgtest-dev libgmock-dev libbenchmark-dev libexpected-dev libspdlog-dev libfmt-dev libre2-dev
      libsnappy-dev protobuf-compiler libprotobuf-dev libsimdjson-dev libmosquitto-dev mosquitto
      clang libclang-rt-14-dev clang-format clang-tidy prometheus prometheus-node-exporter systemd
      libssl-dev openssl curl libcrypt-dev)

deps() {
  local missing=()
  for p in "${DEBS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    echo "installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

build() {
  local preset=${1:-release}
  local extra=()
  # The Node.js addon (node/) is built, and its tests run, wherever node is
  # installed: nodejs (nodesource's package, as on CI) ships node_api.h. ON
  # makes a node without its headers an error instead of a silent skip.
  if command -v node >/dev/null; then extra+=(-DRINGPIPE_NODE=ON); fi
  cmake --preset "$preset" "${extra[@]}" >/dev/null
  cmake --build --preset "$preset" -j"$(nproc)"
}

suite() {
  local preset=$1
  build "$preset"
  ctest --preset "$preset" -j"$(nproc)"
}

# The quarantine of a record that kills its reader, proven with the test-only
# crash points, which release builds leave out (a debug build of the binary
# and the two tests that need them).
hooks() {
  cmake --preset dev >/dev/null
  cmake --build --preset dev -j"$(nproc)" --target ringpipe apps_quarantine_e2e_test exporters_mp_test
  ctest --preset dev -R 'Quarantine'
}

# The ring's own suites (unit, integrity, model, threaded stress) under
# ASan+UBSan and under TSan: its lock-free protocol is where an out-of-bounds
# read or a data race would hide. `asan`/`tsan` run the whole suite.
ring_sanitized() {
  local p
  for p in asan tsan; do
    cmake --preset "$p" >/dev/null
    cmake --build --preset "$p" -j"$(nproc)" --target ring_unit_test ring_integrity_test ring_model_test ring_stress_test
    ctest --preset "$p" -R '^ring\.' -L 'unit|stress' -j"$(nproc)"
  done
}

# libFuzzer on every parser for a bounded time (clang build of the parsers only).
fuzz() {
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j"$(nproc)"
  ctest --preset fuzz -j"$(nproc)"
}

case "${1:-}" in
  deps) deps ;;
  build) deps; build "${2:-release}" ;;
  run) deps; build release; shift; exec build/release/apps/ringpipe run "$@" ;;
  test) deps; fuzz; ring_sanitized; suite test ;;
  fuzz) deps; fuzz ;;
  hooks) deps; hooks ;;
  ring-sanitized) deps; ring_sanitized ;;
  asan) deps; suite asan ;;
  tsan) deps; suite tsan ;;
  *) echo "usage: $0 run|test|deps|build [preset]|asan|tsan|ring-sanitized|fuzz|hooks" >&2; exit 2 ;;
esac
