#!/usr/bin/env python3
"""Runs weakref benchmark binaries and prints each benchmark's cost relative to its baseline.

Usage: tools/bench_ratios.py [--strict] BINARY... [-- EXTRA_BENCHMARK_ARGS...]

Each binary runs with 5 repetitions (randomly interleaved); the median CPU time of each
benchmark is compared with the median of its baseline from the explicit PAIRS table below.
CPU time (not wall time) is used so that other processes on a busy machine inflate both
sides less. Prints a Markdown table, then the sizes the benchmarks report. With --strict,
exits 1 if a goal is missed.
"""
import json
import subprocess
import sys

# ours -> (baseline, goal as max ratio or None, description)
PAIRS = {
    "BM_RefLock": ("BM_StdWeakPtrLock", 1.10, "ref lock (live)"),
    "BM_RefLockDead": ("BM_StdWeakPtrLockDead", None, "ref lock (dead)"),
    "BM_RefCopy": ("BM_StdWeakPtrCopy", None, "ref copy"),
    "BM_RefCreate": ("BM_StdWeakPtrCreate", None, "ref create (canonical exists)"),
    "BM_RefCreateWithCallback": ("BM_StdWeakPtrCreate", None, "ref create with callback"),
    "BM_ProxyArrow": ("BM_SharedPtrArrowThroughLock", None, "proxy->method()"),
    "BM_WeakMethodCall": ("BM_StdWeakPtrLockCall", None, "weak_method call"),
    "BM_DeathWithCallbacks/0": ("BM_StdMakeSharedRelease", None, "death, 0 callbacks"),
    "BM_DeathWithCallbacks/1": ("BM_StdMakeSharedRelease", None, "death, 1 callback"),
    "BM_DeathWithCallbacks/8": ("BM_StdMakeSharedRelease", None, "death, 8 callbacks"),
    "BM_WeakrefMakeSharedRelease<int>": (
        "BM_StdMakeSharedRelease<int>", 1.25, "make_shared+release (int)"),
    "BM_WeakrefMakeSharedRelease<bytes64>": (
        "BM_StdMakeSharedRelease<bytes64>", 1.25, "make_shared+release (64 B)"),
    "BM_FinalizeCreateFire": ("BM_StdMakeSharedRelease<int>", None, "finalize create+fire"),
}

TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


# Context keys the benchmarks add (sizes, mode), printed under the table.
CONTEXT_KEYS = ("mode", "__libc_single_threaded", "bytes_per_object", "sizeof")


def medians(binary, extra, context):
    """(median CPU time in ns, coefficient of variation) of every benchmark in `binary`, by
    name; fills `context`."""
    # Random interleaving runs the repetitions of all benchmarks in a shuffled order, so a
    # burst of load from other processes hits a benchmark and its baseline alike.
    cmd = [binary, "--benchmark_format=json", "--benchmark_repetitions=5",
           "--benchmark_report_aggregates_only=true",
           "--benchmark_enable_random_interleaving=true", *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    for key, value in report["context"].items():
        if key.startswith(CONTEXT_KEYS):
            context[key] = value
    median, cv = {}, {}
    for b in report["benchmarks"]:
        if b.get("aggregate_name") == "median":
            median[b["run_name"]] = b["cpu_time"] * TO_NS[b.get("time_unit", "ns")]
        elif b.get("aggregate_name") == "cv":
            cv[b["run_name"]] = b["cpu_time"]  # a fraction, whatever the time unit
    return {name: (t, cv.get(name, float("nan"))) for name, t in median.items()}


def main(argv):
    strict = "--strict" in argv
    argv = [a for a in argv if a != "--strict"]
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    if not argv:
        sys.exit(__doc__)
    times = {}
    context = {}
    for binary in argv:
        times.update(medians(binary, extra, context))

    print("| operation | benchmark | ours (ns) | baseline (ns) | ratio | goal | pass/fail "
          "| cv ours / baseline |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |")
    missed = False
    for ours, (baseline, goal, what) in PAIRS.items():
        if ours not in times or baseline not in times:
            continue
        (t_ours, cv_ours), (t_base, cv_base) = times[ours], times[baseline]
        ratio = t_ours / t_base
        verdict = "—"
        if goal is not None:
            verdict = "pass" if ratio <= goal else "FAIL"
            missed |= ratio > goal
        print(f"| {what} | {ours} vs {baseline} | {t_ours:.2f} | {t_base:.2f} | {ratio:.2f}× "
              f"| {'≤ %.2f×' % goal if goal else '—'} | {verdict} "
              f"| {cv_ours:.1%} / {cv_base:.1%} |")
    print()
    for key, value in sorted(context.items()):
        print(f"- {key}: {value}")
    return 1 if strict and missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
