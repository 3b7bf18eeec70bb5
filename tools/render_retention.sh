#!/usr/bin/env bash
# Renders the tour's retention graph (section 16, "Why is my widget still alive?") to SVG with
# Graphviz's dot: docs/retention.svg by default.
#
# Usage: tools/render_retention.sh [build-dir] [output.svg]
#   build-dir: a configured build tree (default: build/default, made with the default preset)
# Without Graphviz (Debian: apt-get install graphviz) it writes the .dot file only and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/default}
out=${2:-docs/retention.svg}
[[ -f $build/CMakeCache.txt ]] || cmake --preset default >/dev/null
cmake --build "$build" --target weakref_tour
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$build/examples/weakref_tour" --dot-dir "$dir" >/dev/null
if ! command -v dot >/dev/null 2>&1; then
  cp "$dir/retention.dot" "${out%.svg}.dot"
  echo "render_retention: Graphviz's dot is not installed (apt-get install graphviz):" \
    "wrote ${out%.svg}.dot only" >&2
  exit 0
fi
dot -Tsvg "$dir/retention.dot" -o "$out"
echo "render_retention: wrote $out"
