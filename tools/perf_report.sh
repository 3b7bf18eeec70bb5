#!/usr/bin/env bash
# The performance report: installs what is missing (Debian/Ubuntu), builds the `bench` preset
# (Release g++, benchmarks only), runs every benchmark beside its baseline (two passes: with a
# second thread started, then single-threaded), counts bytes, times the same scenarios in
# CPython, and rewrites docs/performance.md, docs/performance.png and docs/gc-scaling.png.
#
# Usage: tools/perf_report.sh [--quick] [other tools/perf_report.py options]
#   --quick   1 repetition, tiny times, no 1,000,000-entry sizes: checks the pipeline only.
# About 10-15 minutes on 2 cores. Run it on a quiet machine: the ratios are what matter, but a
# busy machine still adds noise.
set -euo pipefail
started=$(date +%s)
cd "$(dirname "$0")/.."

# --- prerequisites: install only what is missing ---
# gnuplot-nox draws the chart: 4 packages, against ~50 for python3-matplotlib (numpy, scipy...).
missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || missing+=("$1"); }
need_cmd cmake cmake
need_cmd ninja ninja-build
need_cmd g++ g++
need_cmd python3 python3
need_cmd gnuplot gnuplot-nox
need_pkg libbenchmark-dev
need_pkg libboost-dev # Boost.Signals2, header-only: the event-bus baseline
# matplotlib draws docs/gc-scaling.png (tools/gc_scaling_plot.py), run by whichever python3 has
# it: Debian's package serves /usr/bin/python3 even when python3 on PATH is another one.
python3 -c 'import matplotlib' >/dev/null 2>&1 ||
  /usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1 || missing+=(python3-matplotlib)
if ((${#missing[@]})); then
  echo "perf_report: installing missing prerequisites: ${missing[*]}"
  sudo=""; [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y \
    --no-install-recommends "${missing[@]}"
fi

# --- build; --fresh so a cache without Boost (or from another compiler) never matters ---
cmake --workflow --preset bench --fresh

# --- run, then write docs/performance.md and docs/performance.png ---
python3 tools/perf_report.py --build-dir build/bench --started "$started" "$@"
echo "perf_report: done in $(( $(date +%s) - started )) s"
