#!/usr/bin/env bash
# The single "test everything" command: format check, sanitizer builds, a minute of fuzzing, then
# the default build (unit tests, consumer/packaging tests, tour, benchmark smoke runs).
# The default workflow runs last so the output ends with ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- prerequisites: install only what is missing (Debian/Ubuntu) ---
missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || missing+=("$1"); }
need_cmd cmake cmake
need_cmd ninja ninja-build # the presets use the Ninja generator
need_cmd g++ g++
need_cmd clang++ clang
need_cmd clang-format clang-format
need_cmd git git
need_cmd pkg-config pkg-config # consumer.pkg_config and consumer.deb
need_cmd dpkg-deb dpkg        # consumer.deb (cpack -G DEB, dpkg -x)
need_cmd dot graphviz         # tour.retention_dot renders the tour's retention graph
need_pkg libgtest-dev
need_pkg libbenchmark-dev
need_pkg libclang-rt-dev # clang's ASan/UBSan runtimes and libFuzzer (the fuzz preset)
need_pkg libc++-14-dev    # asan-ubsan builds against libc++ (clang 14's)
need_pkg libc++abi-14-dev
need_pkg googletest       # GoogleTest's sources: asan-ubsan builds them against libc++
if ((${#missing[@]})); then
  echo "test_all: installing missing prerequisites: ${missing[*]}"
  sudo=""; [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y \
    --no-install-recommends "${missing[@]}"
fi

# --- formatting (cheap, so it fails fast) ---
echo "test_all: clang-format check"
git ls-files '*.hpp' '*.cpp' | xargs -r clang-format --dry-run --Werror

# --- builds and tests; --fresh so stale caches never matter ---
cmake --workflow --preset asan-ubsan --fresh
cmake --workflow --preset tsan --fresh
cmake --workflow --preset fuzz --fresh # 60 s of libFuzzer on the difftest interpreter
cmake --workflow --preset default --fresh
