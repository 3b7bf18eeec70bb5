#!/usr/bin/env python3
"""Draws docs/gc-scaling.png: how weakref::gc::collect()'s time per object grows with the number
of tracked objects, beside CPython's gc.collect() on the same graphs and the hand-written cycle
break (bench/gc_benchmark.cpp, tools/perf_cpython_gc.py).

Usage: tools/gc_scaling_plot.py DATA.json OUT.png

DATA.json (written by tools/perf_report.py into its build directory as gc_scaling.json):
  {"ours": {"garbage": {N: ns per object}, "live": {...}}, "base": {...}, "python": {...}}
Needs matplotlib (Debian: python3-matplotlib; tools/perf_report.sh installs it).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after choosing the backend)

STYLE = {  # (side, kind) -> label, colour, line style, marker
    ("ours", "garbage"): ("weakref::gc::collect(), all garbage", "#c62828", "-", "o"),
    ("ours", "live"): ("weakref::gc::collect(), all live", "#1565c0", "-", "o"),
    ("python", "garbage"): ("CPython gc.collect(), all garbage", "#c62828", "--", "s"),
    ("python", "live"): ("CPython gc.collect(), all live", "#1565c0", "--", "s"),
    ("base", "garbage"): ("by hand: lock + reset each edge (garbage)", "#757575", ":", "^"),
    ("base", "live"): ("by hand: lock + read each edge (live)", "#bdbdbd", ":", "v"),
}


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    with open(argv[0]) as f:
        data = json.load(f)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for (side, kind), (label, color, line, marker) in STYLE.items():
        points = sorted((int(n), ns) for n, ns in data.get(side, {}).get(kind, {}).items())
        if points:
            ax.plot([n for n, _ in points], [ns for _, ns in points], line, color=color,
                    marker=marker, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tracked objects N (2-cycles)")
    ax.set_ylabel("ns per object (thread CPU time, median)")
    ax.set_title("Cycle collection: time per object vs number of objects")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(argv[1], dpi=100)


if __name__ == "__main__":
    main(sys.argv[1:])
