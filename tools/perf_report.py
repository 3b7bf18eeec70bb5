#!/usr/bin/env python3
"""Runs the weakref benchmarks and writes docs/performance.md and docs/performance.png.

Usage: tools/perf_report.py [--build-dir DIR] [--out MD] [--png PNG] [--repetitions N]
                            [--min-time SECONDS] [--quick] [--no-single-threaded] [--strict]
                            [--gc-png PNG] [--binaries NAME,...]

Normally run by tools/perf_report.sh (which installs what is missing and builds the `bench`
preset first). Every benchmark is a pair "<op>/ours" + "<op>/base" (bench/bench_support.hpp);
each pair at each size runs in its own process with N repetitions, randomly interleaved so that
a burst of load hits both sides, and the median of each side is compared. Pass 1 has the
parked second thread (atomic refcounts, what users pay); pass 2 sets
WEAKREF_BENCH_SINGLE_THREADED=1 (libstdc++'s non-atomic refcounts; the contended cases are left
out). Then bench/memory_report counts bytes and tools/perf_cpython.py times the same scenarios
in CPython. --quick (1 repetition, tiny times, no 1,000,000 sizes) only checks the pipeline.
--strict exits 1 if a goal is missed (after writing the report). The cycle collector's rows
(gc_benchmark) also draw docs/gc-scaling.png (tools/gc_scaling_plot.py, matplotlib).
--binaries runs only those benchmark binaries (e.g. gc_benchmark; the page then has only their
rows: write it elsewhere with --out).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARIES = ("ref_benchmark", "make_shared_benchmark", "containers_benchmark",
            "signals2_benchmark", "gc_benchmark")
TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
BIG = 1000000  # sizes this large run with fewer iterations (and not in --quick)
HUGE = 10000000  # sizes this large are left out of the single-threaded pass

# --- what each benchmark pair means: op -> (area, operation, baseline, goal) ---
# goal: (max ratio, sizes it applies to or None for all[, "python": the ratio is ours / CPython]),
# or a list of such goals, all of which must hold. Order here is the report's order.
AREAS = {
    "core": "Objects and handles",
    "contended": "Contended: two threads at once",
    "weak_value_map": "weak_value_map vs std::unordered_map<int, std::weak_ptr<V>>",
    "weak_key_map": "weak_key_map vs std::map<std::weak_ptr<K>, V, std::owner_less<>>",
    "weak_set": "weak_set vs std::vector<std::weak_ptr<T>>",
    "event_bus": "Event bus: weak_set vs Boost.Signals2 slot tracking",
    "gc": "Cycle collector: weakref::gc vs breaking cycles by hand, and CPython's gc",
}
OPS = {
    "make_shared.int": ("core", "`make_shared<int>` + release", "`std::make_shared<int>` + release",
                        (1.25, None)),
    "make_shared.bytes64": ("core", "`make_shared<64 B>` + release",
                            "`std::make_shared<64 B>` + release", (1.25, None)),
    "ref.create_first": ("core", "`ref(obj)`, first ref (makes the canonical one)",
                         "`std::weak_ptr(obj)`", None),
    "ref.create": ("core", "`ref(obj)`, canonical ref exists", "`std::weak_ptr(obj)`", None),
    "ref.create_callback": ("core", "`ref(obj, callback)`", "`std::weak_ptr(obj)`", None),
    "ref.lock": ("core", "`ref::lock()` live", "`std::weak_ptr::lock()`", (1.10, None)),
    "ref.lock_dead": ("core", "`ref::lock()` dead", "`std::weak_ptr::lock()` dead", None),
    "ref.lock_tracked": ("core", "`ref::lock()` live, object tracked by `weakref::gc`",
                         "`std::weak_ptr::lock()`", None),
    "ref.copy": ("core", "`ref` copy + destroy", "`std::weak_ptr` copy + destroy", None),
    "proxy.access": ("core", "`proxy->get()`", "lock, throw if dead, `get()`", None),
    "weak_method.call": ("core", "`weak_method` call", "lock, call if alive", None),
    "finalize.create_fire": ("core", "`finalize` create + fire",
                             "`std::make_shared` + release + `std::function` call", (3.0, None)),
    "death": ("core", "death with k callbacks (size = k)",
              "`std::make_shared`, k `weak_ptr`s, release, k `std::function` calls",
              (1 / 3, (1, 8), "python")),
    "mt.make_shared": ("contended", "`make_shared<int>` + release, 2 threads",
                       "`std::make_shared<int>` + release", None),
    "mt.ref.lock": ("contended", "`ref::lock()`, 2 threads, one object",
                    "`std::weak_ptr::lock()`", None),
    "mt.ref.create_callback": ("contended", "`ref(obj, callback)` + drop, 2 threads, one object",
                               "`std::weak_ptr(obj)` + drop", (2.0, None)),
    "mt.floor.callback_ref": (
        "contended", "lower bound of the row above (not ours): `weak_ptr` + "
        "new/delete of a node + 1 atomic on the object's block (link) + 1 on the node (drop)",
        "`std::weak_ptr(obj)` + drop", None),
    "mt.gc.make_shared.tracked": (
        "contended", "`make_shared` of a tracked type (with `traverse`) + release, 2 threads",
        "`std::make_shared` of it + release", None),
    "mt.weak_value_map.lookup_during_deaths": (
        "contended", "`weak_value_map::get` hit while the other thread releases entries' objects",
        "`unordered_map` find + lock, same", None),
}
CONTAINER_OPS = (  # suffix -> (operation, baseline per container)
    ("lookup_hit", "lookup hit", {"weak_value_map": "find + lock", "weak_key_map": "find",
                                  "weak_set": "linear search"}),
    ("lookup_miss", "lookup miss", {"weak_value_map": "find", "weak_key_map": "find",
                                    "weak_set": "linear search"}),
    ("insert", "insert (batch of ≤ 64)", {"weak_value_map": "try_emplace",
                                          "weak_key_map": "try_emplace",
                                          "weak_set": "push_back (no duplicate check)"}),
    ("erase", "erase (batch of ≤ 64)", {"weak_value_map": "erase(key)",
                                        "weak_key_map": "erase(weak_ptr)",
                                        "weak_set": "find + erase"}),
    ("iterate", "iterate (per entry)", {"weak_value_map": "lock each",
                                        "weak_key_map": "lock each",
                                        "weak_set": "lock each, virtual call"}),
    ("death", "entry removal on its object's death", {
        "weak_value_map": "release + erase(key) by hand",
        "weak_key_map": "release + erase(weak_ptr) by hand",
        "weak_set": "release + find + erase by hand"}),
    ("death_floor", "lower bound of the row above (not ours): its baseline + the 4 atomic "
     "operations of a death delivered to a container", {
         "weak_value_map": "release + erase(key) by hand",
         "weak_key_map": "release + erase(weak_ptr) by hand",
         "weak_set": "release + find + erase by hand"}),
)
# Issue 13: removal on death at least 2x faster than CPython and at most 1.5x its baseline.
DEATH_GOALS = [(0.5, None, "python"), (1.5, None)]
CONTAINER_GOALS = {"weak_value_map.lookup_hit": (1.0, None), "weak_value_map.insert": (1.5, None),
                   "weak_set.iterate": (1.2, (1000,)), "weak_value_map.death": DEATH_GOALS,
                   "weak_key_map.death": DEATH_GOALS, "weak_set.death": DEATH_GOALS}
for _c in ("weak_value_map", "weak_key_map", "weak_set"):
    for _suffix, _what, _base in CONTAINER_OPS:
        _op = f"{_c}.{_suffix}"
        _what = f"`{_c}` {_what}" + (" + virtual call" if _op == "weak_set.iterate" else "")
        OPS[_op] = (_c, _what, _base[_c], CONTAINER_GOALS.get(_op))
OPS["event_bus.emit"] = ("event_bus", "emit: `weak_set` iterate + virtual call (per observer)",
                         "`signals2::signal` call, slots `track_foreign(weak_ptr)`", None)
OPS["event_bus.connect"] = ("event_bus", "subscribe: `weak_set::insert`",
                            "`signal.connect(slot.track_foreign(weak_ptr))`", None)

# The cycle collector (bench/gc_benchmark.cpp, tools/perf_cpython_gc.py). Collect rows are ns
# per object (size = N objects); their goal is against CPython's gc.collect() on the same graph.
OPS["gc.collect.garbage"] = (
    "gc", "`gc::collect()`, N objects in 2-cycles, all garbage (ns per object)",
    "walk a `weak_ptr` registry, lock, reset each edge by hand", (0.5, None, "python"))
OPS["gc.collect.live"] = (
    "gc", "`gc::collect()`, N live objects in 2-cycles held from outside (ns per object)",
    "walk a `weak_ptr` registry, lock, read each edge", (0.5, None, "python"))
OPS["gc.collect.ephemerons"] = (
    "gc", "`gc::collect()`, N live objects in 2-cycles, N / 10 of them keys of a `weak_key_map` "
    "whose value owns its key (ns per object)", "`gc::collect()` of the same objects without the map",
    None)
OPS["gc.why_alive"] = (
    "gc", "`gc::why_alive(x)` among N live objects in 2-cycles (ns per object; CPython: "
    "`gc.get_referrers(x)`)", "search a `weak_ptr` registry by hand for x's holders", None)
OPS["gc.get_referrers"] = (
    "gc", "`gc::get_referrers(x)` among N live objects in 2-cycles (ns per object)",
    "search a `weak_ptr` registry by hand for x's holders", None)
OPS["gc.make_shared.tracked"] = ("gc", "`make_shared` of a tracked type (with `traverse`) + release",
                                 "`std::make_shared` of it + release", (1.25, None))
OPS["gc.make_shared.untracked"] = (
    "gc", "`make_shared` of the same 16 B type without `traverse` + release",
    "`std::make_shared` of it + release", (1.25, None))

OPS["gc.edit_scope"] = ("gc", "`gc::edit_scope` made + destroyed, uncontended",
                        "`std::shared_mutex` `lock_shared` + `unlock_shared`", None)

# Memory rows: key -> (what, baseline, goal on ours - baseline bytes)
MEMORY = {
    "object.int": ("object holding an `int` (one allocation: control block + object)",
                   "`std::make_shared<int>`", 32),
    "object.bytes64": ("object of 64 bytes", "`std::make_shared<64 B>`", 32),
    "ref.first": ("first `ref` to an object (makes the canonical node)", "`std::weak_ptr`", None),
    "ref.more": ("further callback-less `ref` (shares it)", "`std::weak_ptr`", None),
    "ref.callback": ("`ref` with callback", "`std::weak_ptr`", None),
    "proxy.first": ("first `proxy` to an object", "`std::weak_ptr`", None),
    "weak_method": ("`weak_method`", "`std::weak_ptr` + member pointer", None),
    "finalize": ("`finalize` (+ its registry entry)", "`std::function<void()>`", None),
    "weak_value_map.entry": ("`weak_value_map<int, V>` entry",
                             "`std::unordered_map<int, std::weak_ptr<V>>`", None),
    "weak_key_map.entry": ("`weak_key_map<K, V>` entry",
                           "`std::map<std::weak_ptr<K>, V, std::owner_less<>>`", None),
    "weak_set.entry": ("`weak_set<T>` entry", "`std::vector<std::weak_ptr<T>>`", None),
    "object.node16": ("object of 16 bytes without `traverse` (untracked)",
                      "`std::make_shared` of it", 32),
    # goal ("beyond", key, extra): at most `extra` bytes beyond row `key`'s overhead
    "object.tracked": ("object of 16 bytes with `traverse` (tracked by `weakref::gc`)",
                       "`std::make_shared` of it", ("beyond", "object.node16", 16)),
}

NAME = re.compile(r"^(?P<op>[^/]+)/(?P<side>ours|base)(?:/(?P<size>\d+))?(?P<rest>(?:/[^/]+)*)$")


def log(*args):
    print("perf_report:", *args, file=sys.stderr, flush=True)


# --- running the C++ benchmarks ---


def list_groups(binary):
    """{(op, size): [benchmark names]} of one binary."""
    out = subprocess.run([binary, "--benchmark_list_tests=true"], check=True,
                         capture_output=True, text=True).stdout
    groups = {}
    for name in out.split():
        m = NAME.match(name)
        if not m:
            log(f"ignoring {name}: not '<op>/ours|base[/size]...'")
            continue
        size = int(m["size"]) if m["size"] else None
        groups.setdefault((m["op"], size), []).append(name)
    return groups


def run_group(binary, names, args, single_threaded):
    """{side: ns per op (median)} and whether the run was really single-threaded."""
    size = NAME.match(names[0])["size"]
    min_time = args.min_time / 2 if size and int(size) >= BIG else args.min_time
    env = dict(os.environ)
    if single_threaded:
        env["WEAKREF_BENCH_SINGLE_THREADED"] = "1"
    cmd = [binary, "--benchmark_format=json",
           "--benchmark_filter=^(" + "|".join(re.escape(n) for n in names) + ")$",
           f"--benchmark_repetitions={args.repetitions}",
           "--benchmark_enable_random_interleaving=true",
           "--benchmark_report_aggregates_only=true", f"--benchmark_min_time={min_time}"]
    report = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True,
                                       env=env).stdout)
    result = {}
    for b in report["benchmarks"]:
        if b.get("aggregate_name", "median") != "median" or "error_occurred" in b:
            continue
        manual = "manual_time" in b["run_name"]
        t = (b["real_time"] if manual else b["cpu_time"]) * TO_NS[b.get("time_unit", "ns")]
        result[NAME.match(b["run_name"])["side"]] = t / (b.get("ops") or 1.0)
    mode = report["context"].get("__libc_single_threaded")
    return result, mode


# Lookups in containers that outgrow the L2 cache (10,000 entries and more) depend on where
# the process's heap happens to place nodes and objects: at 100,000 entries one baseline measured
# 53 ns in one process and 84 ns in the next, on the same binary. The collector's rows swing as
# much (garbage at 10,000 objects: 48 and 65 ns in two processes). Such a pair runs in this many
# processes, and each side's figure is the median of the processes' medians (the collector's at
# 10^7 objects once: a few iterations each, and minutes).
PLACEMENT_PROCESSES = 3


def processes_for(op, size):
    if op.endswith("lookup_hit") and (size or 0) >= 10000:
        return PLACEMENT_PROCESSES
    if op.startswith(("gc.collect.", "gc.why_alive", "gc.get_referrers")) and (size or 0) < HUGE:
        return PLACEMENT_PROCESSES
    return 1


def run_benchmarks(args, single_threaded):
    """{(op, size): {"ours": ns, "base": ns}}; contended cases only in the threaded pass."""
    results = {}
    for name in args.binaries or BINARIES:
        binary = os.path.join(args.build_dir, "bench", name)
        if not os.path.exists(binary):
            log(f"{binary} not built, skipped")
            continue
        for (op, size), names in sorted(list_groups(binary).items(), key=lambda g: g[0][1] or 0):
            if (single_threaded and op.startswith("mt.")) or (args.quick and (size or 0) >= BIG):
                continue
            if single_threaded and (size or 0) >= HUGE:
                continue
            start = time.time()
            runs = [run_group(binary, names, args, single_threaded)
                    for _ in range(processes_for(op, size))]
            sides = {side: statistics.median(r[0][side] for r in runs)
                     for side in runs[0][0] if all(side in r[0] for r in runs)}
            mode = runs[0][1]
            log(f"  {op} {size or ''}: {time.time() - start:.1f} s")
            if single_threaded and mode != "1":
                log(f"{op}/{size}: not single-threaded (mode {mode}); left out")
                continue
            if set(sides) == {"ours", "base"}:
                results[(op, size)] = sides
    return results


# --- machine info ---


def machine_info(build_dir):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    compiler, flags = "unknown", "?"
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            cache = dict(line.strip().split("=", 1) for line in f
                         if "=" in line and not line.startswith(("//", "#")))
        flags = cache.get("CMAKE_CXX_FLAGS_RELEASE:STRING", "?")
        compiler = subprocess.run([cache.get("CMAKE_CXX_COMPILER:STRING") or cache["CMAKE_CXX_COMPILER:FILEPATH"], "--version"],
                                  capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, KeyError, IndexError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "compiler": compiler, "flags": flags,
            "os": f"{platform.system()} {platform.release()}",
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M")}


# --- the report ---


def fmt_ns(ns):
    return f"{ns:.3g}" if ns < 100 else f"{ns:,.0f}"


def fmt_ratio(r):
    if r < 0.1:
        return f"{r:.2g}×"
    return f"{r:.2f}×" if r < 10 else f"{r:.1f}×" if r < 100 else f"{r:,.0f}×"


def goal_text(goal, size, ratio, python=None, ours=None):
    """goal: (max ratio, sizes or None[, "python"]): the last form bounds ours / CPython.
    A list of goals: each applicable one, joined."""
    if isinstance(goal, list):
        return "; ".join(t for t in (goal_text(g, size, ratio, python, ours) for g in goal) if t)
    if not goal or (goal[1] and size not in goal[1]):
        return ""
    if len(goal) > 2 and goal[2] == "python":
        if not python:
            return f"≤ {goal[0]:.2f}× CPython: no CPython time"
        verdict = "pass" if ours / python <= goal[0] else "**miss**"
        return f"≤ {goal[0]:.2f}× CPython ({fmt_ratio(ours / python)}) {verdict}"
    verdict = "pass" if ratio <= goal[0] else "**miss**"
    return f"≤ {goal[0]:.2f}× {verdict}"


def size_text(op, size):
    if size is None:
        return ""
    return f"{size:,}" if op != "death" else f"k = {size}"


def build_rows(times, single, python):
    """Report rows in OPS order: dicts with everything a table line or the chart needs."""
    rows = []
    for op, (area, what, baseline, goal) in OPS.items():
        for (o, size), sides in sorted(times.items(), key=lambda kv: kv[0][1] or 0):
            if o != op:
                continue
            ratio = sides["ours"] / sides["base"]
            st = single.get((op, size))
            py = python.get(op, {}).get("" if size is None else str(size))
            rows.append({
                "op": op, "area": area, "what": what, "baseline": baseline, "size": size,
                "ours": sides["ours"], "base": sides["base"], "ratio": ratio,
                "ratio_st": st["ours"] / st["base"] if st else None,
                "goal": goal_text(goal, size, ratio, py, sides["ours"]), "python": py,
                "faster": py / sides["ours"] if py else None,
            })
    return rows


def table(rows):
    lines = ["| operation | baseline | size | ours (ns) | baseline (ns) | ratio | ratio, "
             "1 thread | goal | CPython (ns) | × faster than CPython |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['what']} | {r['baseline']} | {size_text(r['op'], r['size'])} "
            f"| {fmt_ns(r['ours'])} | {fmt_ns(r['base'])} | {fmt_ratio(r['ratio'])} "
            f"| {fmt_ratio(r['ratio_st']) if r['ratio_st'] else '—'} | {r['goal']} "
            f"| {fmt_ns(r['python']) if r['python'] else '—'} "
            f"| {fmt_ratio(r['faster']) if r['faster'] else '—'} |")
    return "\n".join(lines)


def memory_table(mem, python_mem):
    lines = ["| what | ours (bytes) | allocations | baseline | baseline (bytes) | allocations "
             "| ours − baseline | goal | CPython (bytes) |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: |"]
    goals = []
    extras = {r["key"]: r["ours"]["bytes"] - r["base"]["bytes"] for r in mem["rows"]}
    for r in mem["rows"]:
        if r["key"] not in MEMORY:
            continue
        what, baseline, goal = MEMORY[r["key"]]
        ours, base = r["ours"], r["base"]
        extra = ours["bytes"] - base["bytes"]
        verdict = ""
        if isinstance(goal, tuple) and goal[1] in extras:  # relative to another row
            goal = round(extras[goal[1]]) + goal[2]
        if isinstance(goal, int):
            verdict = f"≤ +{goal} {'pass' if extra <= goal else '**miss**'}"
            goals.append((f"bytes per object overhead ({what.split(' (')[0]})", verdict))
        py = python_mem.get(r["key"])
        lines.append(f"| {what} | {ours['bytes']:.0f} | {ours['allocations']:.2g} | {baseline} "
                     f"| {base['bytes']:.0f} | {base['allocations']:.2g} | {extra:+.0f} "
                     f"| {verdict} | {f'{py:.0f}' if py is not None else '—'} |")
    return "\n".join(lines), goals


TEMPLATE = """# Performance

<!-- Generated by tools/perf_report.sh ({generator}); do not edit by hand: edit the template in
tools/perf_report.py and re-run the command. -->

Generated by `tools/perf_report.sh` on {date}. Re-run it to reproduce every figure here
(it installs what is missing, builds the `bench` preset, runs all benchmarks, times CPython,
and rewrites this page and [performance.png](performance.png)); it takes about
{minutes:.0f} minutes on this machine.

| machine | |
| --- | --- |
| CPU | {cpu} |
| cores | {cores} |
| compiler | {compiler}, CMake preset `bench` (Release: `{flags}`) |
| OS | {os} |
| CPython | {python} |
| repetitions | {repetitions} per benchmark, median; minimum time {min_time} s per repetition (half at 1,000,000 entries) |

## How to read it

- Every operation runs beside its baseline **in the same binary** (`bench/`: each benchmark is
  a pair `<op>/ours` and `<op>/base` registered from one body). Each pair runs in its own
  process with its repetitions randomly interleaved, so a burst of load from other processes
  hits both sides; **ratio** = median ours / median baseline. Ratios are the point: absolute
  times depend on the machine and on its load. Lookup hits at 10,000 entries and more depend
  on where the heap places nodes and objects, which changes from process to process (one
  baseline: 53 ns in one, 84 ns in the next), and so do the collector's rows: those pairs (the
  collector's below 10^7 objects) run in {placement_processes} processes, and each side's figure
  is the median of theirs.
- **Every figure is taken with a second thread already started** (each binary parks one before
  timing): libstdc++ skips atomic reference counts while a program has a single thread, which
  would flatter `std::shared_ptr`. The column **ratio, 1 thread** is a second pass without that
  thread (`WEAKREF_BENCH_SINGLE_THREADED=1`), where `std::shared_ptr` uses plain increments:
  what a single-threaded program sees.
- Times are CPU time of the benchmark thread per operation; operations needing untimed setup
  (container insert/erase in batches of up to 64, deaths) time only their section, in thread
  CPU time, less the cost of reading the clock. Container sizes are the number of entries
  already present; below 64 entries, such a section runs on several containers of that size
  (260 operations at 10 entries), because the two clock reads cost about 0.5 µs and vary by
  about 0.1 µs, as much as 10 operations take.
- **CPython** runs the same scenario with the `weakref` module (`tools/perf_cpython.py`, stdlib
  `timeit`), on the machine's `python3`; **× faster than CPython** = CPython time / ours.
- Goals from the issues are marked pass / **miss**.
- A **lower bound** row is not ours: it is written by hand in `bench/`, beside the same baseline,
  and does only what any design of that operation must (the atomic operations of a death
  delivered to a container; a callback's node and its links), so its ratio bounds the row above
  it from below. It is left out of the chart and the worst ratios.

## Summary

{summary}

{sections}

## Memory

Counted, not estimated: `bench/memory_report.cpp` replaces the global `operator new`/`delete`
and keeps {mem_n:,} instances alive. Bytes per handle are `sizeof` plus the heap bytes it keeps
alive; per object, the whole allocation (control block + object); per container entry, what
the container holds per entry once full (growth garbage excluded). CPython: `tracemalloc`,
a handle counted with its 8-byte reference.

{memory}

![ratio vs baseline per operation](performance.png)
"""


GC_NOTE = """`bench/gc_benchmark.cpp`: N tracked objects in N / 2 two-cycles; only the collection
(or the hand walk) is timed, in thread CPU time, and every figure of the collect rows is **ns
per object**. The baseline is what a program without a collector writes: a registry of
`std::weak_ptr` to every object, walked by hand (lock each; reset its edge when it is garbage).
CPython (`tools/perf_cpython_gc.py`): the same graph of `__slots__ = ('other', '__weakref__')`
objects, built with `gc.disable()` after `gc.freeze()` (so `gc.collect()` examines the graph,
not the interpreter's own objects); its goal is ours ≤ 0.5× CPython. Sizes of 10,000,000 are
left out of the single-threaded pass.

"""

CONTENDED_NOTE = """Both benchmark threads work on one object at once, so every atomic operation on its
control block's cache line moves the line between cores. The floor row is not our code: it is
the least any weak reference with a callback must do beside a `std::weak_ptr` (a node to hold
the callback, that node's own `weak_ptr`, one atomic to link it into its object's list and one
to drop it), written by hand in `bench/ref_benchmark.cpp`; its ratio bounds the
`ref(obj, callback)` row from below.

"""
AREA_NOTES = {"gc": GC_NOTE, "contended": CONTENDED_NOTE}


def is_floor(row):
    """A lower-bound row: hand-written, not ours (kept out of the worst list and the chart)."""
    return "floor" in row["op"]


def summary(rows, goals):
    lines = []
    for r in rows:
        if r["goal"]:
            size = size_text(r["op"], r["size"])
            lines.append(f"- {r['what']}{f' ({size})' if size else ''}: "
                         f"{fmt_ratio(r['ratio'])} — goal {r['goal']}")
    lines += [f"- {what}: {verdict}" for what, verdict in goals]
    worst = sorted((r for r in rows if not is_floor(r)), key=lambda r: r["ratio"],
                   reverse=True)[:5]
    lines.append("- Five worst ratios: " + "; ".join(
        f"{r['op']} {size_text(r['op'], r['size'])} {fmt_ratio(r['ratio'])}".replace("  ", " ")
        for r in worst))
    faster = [r["faster"] for r in rows if r["faster"]]
    if faster:
        lines.append(f"- Median × faster than CPython over {len(faster)} rows: "
                     f"{fmt_ratio(statistics.median(faster))}")
    return "\n".join(lines)


# --- the chart ---


def chart(rows, png):
    """Horizontal log-scale bars of ratio vs baseline, one per row, a line at 1.0 (gnuplot, or
    matplotlib if gnuplot is missing)."""
    labels = [f"{r['op']} {size_text(r['op'], r['size'])}".strip() for r in rows]
    ratios = [r["ratio"] for r in rows]
    height = max(600, 16 * len(rows) + 120)
    if shutil.which("gnuplot"):
        with tempfile.TemporaryDirectory() as tmp:
            data = os.path.join(tmp, "ratios.dat")
            with open(data, "w") as f:
                for i, (label, ratio) in enumerate(zip(labels, ratios)):
                    color = 0x2e7d32 if ratio <= 1.0 else (0xf9a825 if ratio <= 2.0 else 0xc62828)
                    f.write(f'{i} {ratio} {color} "{label}"\n')
            lo = min(min(ratios), 1.0) / 1.5
            hi = max(max(ratios), 1.0) * 1.5
            script = f"""
set terminal pngcairo size 1100,{height} font "sans,9"
set output "{png}"
set termoption noenhanced
set title "weakref: time ratio vs baseline (ours / baseline; < 1 is faster), log scale" font "sans,12"
set logscale x
set format x "%g"
set xrange [{lo}:{hi}]
set yrange [{len(rows)}:-1]
set ytics scale 0 font "monospace,8"
set grid xtics
set key off
set style fill solid 0.85 noborder
set arrow from 1,graph 0 to 1,graph 1 nohead lw 2 lc rgb "black"
plot "{data}" using (sqrt({lo}*$2)):1:({lo}):2:($1-0.38):($1+0.38):3:ytic(4) \
  with boxxyerror lc rgb variable, \
  "" using 2:1:(sprintf($2 < 0.1 ? "%.2g" : "%.2f", $2)) with labels left offset 0.5,0 font "sans,7"
"""
            subprocess.run(["gnuplot"], input=script, text=True, check=True)
        return True
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("neither gnuplot nor matplotlib: no chart")
        return False
    fig, ax = plt.subplots(figsize=(11, height / 100))
    colors = ["#2e7d32" if r <= 1 else "#f9a825" if r <= 2 else "#c62828" for r in ratios]
    ax.barh(range(len(rows)), ratios, color=colors)
    ax.set_yticks(range(len(rows)), labels, fontsize=7, family="monospace")
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1.0, color="black")
    ax.set_title("weakref: time ratio vs baseline (ours / baseline; < 1 is faster), log scale")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    return True


def gc_scaling(rows, png, build_dir):
    """docs/gc-scaling.png: collect()'s ns per object vs N (tools/gc_scaling_plot.py, run by a
    python3 that has matplotlib); its data is kept in <build-dir>/gc_scaling.json."""
    data = {}
    for r in rows:
        if r["op"] in ("gc.collect.garbage", "gc.collect.live") and r["size"]:
            kind = r["op"].rsplit(".", 1)[1]
            for side in ("ours", "base", "python"):
                if r[side]:
                    data.setdefault(side, {}).setdefault(kind, {})[str(r["size"])] = r[side]
    if not data:
        return False
    path = os.path.join(build_dir, "gc_scaling.json")
    with open(path, "w") as f:
        json.dump(data, f, indent=1)
    script = os.path.join(ROOT, "tools", "gc_scaling_plot.py")
    for python in dict.fromkeys((sys.executable, "/usr/bin/python3", "python3")):
        if python and subprocess.run([python, "-c", "import matplotlib"],
                                     capture_output=True).returncode == 0:
            subprocess.run([python, script, path, png], check=True)
            return True
    log(f"no python3 with matplotlib: no {png} (data in {path})")
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build", "bench"))
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "performance.md"))
    parser.add_argument("--png", default=os.path.join(ROOT, "docs", "performance.png"))
    parser.add_argument("--gc-png", default=os.path.join(ROOT, "docs", "gc-scaling.png"))
    parser.add_argument("--binaries", type=lambda s: s.split(","), default=None,
                        help="comma-separated benchmark binaries to run (default: all)")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.05)
    parser.add_argument("--python", default=shutil.which("python3") or sys.executable,
                        help="the CPython to compare with")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-single-threaded", action="store_true")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a goal is missed")
    parser.add_argument("--started", type=float, default=time.time(),
                        help="epoch seconds the whole command started (for the run time)")
    args = parser.parse_args()
    if args.quick:
        args.repetitions, args.min_time = 1, 0.002

    log("pass 1: second thread started (atomic refcounts)")
    times = run_benchmarks(args, single_threaded=False)
    single = {}
    if not args.no_single_threaded:
        log("pass 2: single-threaded")
        single = run_benchmarks(args, single_threaded=True)
    log("memory")
    mem = json.loads(subprocess.run([os.path.join(args.build_dir, "bench", "memory_report")],
                                    check=True, capture_output=True, text=True).stdout)
    log(f"CPython ({args.python})")
    py_cmd = [args.python, os.path.join(ROOT, "tools", "perf_cpython.py")]
    if args.quick:
        py_cmd += ["--quick", "--sizes", "10,1000", "--gc-sizes", "10000,100000"]
    python = json.loads(subprocess.run(py_cmd, check=True, capture_output=True,
                                       text=True).stdout)

    rows = build_rows(times, single, python["times"])
    mem_text, mem_goals = memory_table(mem, python["memory"])
    sections = []
    for area, title in AREAS.items():
        area_rows = [r for r in rows if r["area"] == area]
        if area_rows:
            sections.append(f"## {title}\n\n{AREA_NOTES.get(area, '')}{table(area_rows)}"
                            + ("\n\n![collect() ns per object vs N](gc-scaling.png)"
                               if area == "gc" else ""))
    info = machine_info(args.build_dir)
    text = TEMPLATE.format(
        generator="tools/perf_report.py" + (" --quick" if args.quick else ""),
        minutes=(time.time() - args.started) / 60, python=python["python"],
        repetitions=args.repetitions, min_time=args.min_time,
        placement_processes=PLACEMENT_PROCESSES,
        summary=summary(rows, mem_goals), sections="\n\n".join(sections), mem_n=mem["n"],
        memory=mem_text, **info)
    with open(args.out, "w") as f:
        f.write(text)
    log(f"wrote {args.out}")
    if chart([r for r in rows if not is_floor(r)], args.png):
        log(f"wrote {args.png}")
    if gc_scaling(rows, args.gc_png, args.build_dir):
        log(f"wrote {args.gc_png}")
    print(summary(rows, mem_goals))
    missed = any("miss" in r["goal"] for r in rows) or any("miss" in v for _, v in mem_goals)
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
