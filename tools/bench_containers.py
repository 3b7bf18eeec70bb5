#!/usr/bin/env python3
"""Runs the weak-container benchmarks and prints each beside its std baseline and CPython.

Usage: tools/bench_containers.py [--strict] [BINARY] [-- EXTRA_BENCHMARK_ARGS...]

BINARY is bench/containers_benchmark (default: the first that exists of build/default/bench/
containers_benchmark, build/bench/containers_benchmark, ./containers_benchmark). It runs with
5 repetitions; each benchmark's median is divided by its "ops" counter (operations per
iteration) to give ns per operation, and compared with its baseline from the explicit PAIRS
table below. CPU time is used (other processes on a busy machine inflate it less than wall
time); the manual-time benchmarks (erase on death) report their own timed section, which is
thread CPU time too. The same operations are then timed in this CPython with timeit at size
1000 (best of 5), for the "x faster than CPython" column. Prints Markdown tables: time, then
bytes per entry. With --strict, exits 1 if a goal is missed.
"""
import json
import os
import random
import subprocess
import sys
import timeit
import weakref

SIZES = (10, 1000, 1000000)
CPYTHON_SIZE = 1000

# (operation, ours, baseline, baseline description, goal as max ratio or None, CPython key)
PAIRS = [
    ("weak_value_map lookup hit (get)", "BM_WeakValueMapLookupHit",
     "BM_StdUnorderedMapWeakPtrLookupHit", "unordered_map<int, weak_ptr> find + lock", 1.0,
     "value_lookup_hit"),
    ("weak_value_map lookup miss", "BM_WeakValueMapLookupMiss",
     "BM_StdUnorderedMapWeakPtrLookupMiss", "unordered_map<int, weak_ptr> find", None,
     "value_lookup_miss"),
    ("weak_value_map insert (+ teardown)", "BM_WeakValueMapInsert",
     "BM_StdUnorderedMapWeakPtrInsert", "unordered_map<int, weak_ptr> try_emplace", 1.3,
     "value_insert"),
    ("weak_value_map entry leaves on death", "BM_WeakValueMapEraseOnDeath",
     "BM_StdUnorderedMapWeakPtrEraseOnDeath", "death + manual erase(key)", None, None),
    ("weak_key_map lookup hit (at)", "BM_WeakKeyMapLookupHit", "BM_StdMapOwnerLessLookupHit",
     "map<weak_ptr, V, owner_less<>> find", None, "key_lookup_hit"),
    ("weak_key_map lookup hit (at)", "BM_WeakKeyMapLookupHit",
     "BM_StdUnorderedMapRawPtrLookupHit", "unordered_map<K*, V> find (unsafe)", None,
     "key_lookup_hit"),
    ("weak_set iterate + virtual call", "BM_WeakSetIterateCall",
     "BM_StdVectorWeakPtrIterateCall", "vector<weak_ptr>: lock, call", 1.2, "set_iterate_call"),
    ("weak_set insert (+ teardown)", "BM_WeakSetInsert", "BM_StdVectorWeakPtrInsert",
     "vector<weak_ptr> push_back", None, "set_insert"),
]

# (ours, baseline) context keys "memory <container>" written by the benchmark's main().
MEMORY = [
    ("weak_value_map<int,V>", "std::unordered_map<int,weak_ptr<V>>"),
    ("weak_key_map<K,int>", "std::map<weak_ptr<K>,int,owner_less<>>"),
    ("weak_key_map<K,int>", "std::unordered_map<K*,int>"),
    ("weak_set<T>", "std::vector<weak_ptr<T>>"),
]

TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
DEFAULT_BINARIES = ("build/default/bench/containers_benchmark",
                    "build/bench/containers_benchmark", "containers_benchmark")


def run_benchmarks(binary, extra):
    """ns per operation of every benchmark, keyed by (name, size); and the report context."""
    cmd = [binary, "--benchmark_format=json", "--benchmark_repetitions=5",
           "--benchmark_report_aggregates_only=true", *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    times = {}
    for b in report["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        parts = b["run_name"].split("/")
        manual = parts[-1] == "manual_time"
        t = b["real_time"] if manual else b["cpu_time"]
        ops = b.get("ops", 1.0) or 1.0
        times[(parts[0], int(parts[1]))] = t * TO_NS[b.get("time_unit", "ns")] / ops
    return times, report.get("context", {})


# --- CPython: the same operations, at CPYTHON_SIZE ---


class Value:
    __slots__ = ("v", "__weakref__")

    def __init__(self, v):
        self.v = v


class Observer:
    __slots__ = ("id", "__weakref__")

    def __init__(self, i):
        self.id = i

    def notify(self):
        return self.id


def key_of(i):
    """The benchmark's keys: i * 0x9E3779B1 mod 2**32 (distinct for distinct i)."""
    return (i * 0x9E3779B1) & 0xFFFFFFFF


def per_op_ns(stmt, env, ops):
    """Best of 5 timeit repeats, in ns per operation (`stmt` performs `ops` operations)."""
    timer = timeit.Timer(stmt, globals=env)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number / ops * 1e9


def cpython_times(n=CPYTHON_SIZE):
    rng = random.Random(42)
    objs = [Value(i) for i in range(n)]
    keys = [key_of(i) for i in range(n)]
    probe = [rng.randrange(n) for _ in range(1024)]
    values = weakref.WeakValueDictionary(zip(keys, objs))
    wkeys = weakref.WeakKeyDictionary((o, i) for i, o in enumerate(objs))
    observers = [Observer(i) for i in range(n)]
    env = {
        "WeakValueDictionary": weakref.WeakValueDictionary, "WeakSet": weakref.WeakSet,
        "get": values.get, "hits": [keys[p] for p in probe],
        "misses": [key_of(n + p) for p in probe], "items": list(zip(keys, objs)),
        "wkeys": wkeys, "key_probes": [objs[p] for p in probe], "objs": objs,
        "observers": weakref.WeakSet(observers),
    }
    return {
        "value_lookup_hit": per_op_ns("for k in hits: get(k)", env, len(probe)),
        "value_lookup_miss": per_op_ns("for k in misses: get(k)", env, len(probe)),
        "value_insert": per_op_ns(
            "d = WeakValueDictionary()\nfor k, o in items: d[k] = o\ndel d", env, n),
        "key_lookup_hit": per_op_ns("for o in key_probes: wkeys[o]", env, len(probe)),
        "set_iterate_call": per_op_ns(
            "total = 0\nfor o in observers: total += o.notify()", env, n),
        "set_insert": per_op_ns("s = WeakSet()\nfor o in objs: s.add(o)\ndel s", env, n),
    }


def parse_memory(text):
    """'live=159.7 allocated=203.4 B/entry (n=100000)' -> (159.7, 203.4)."""
    fields = dict(f.split("=", 1) for f in text.split() if "=" in f and not f.startswith("(n"))
    return float(fields["live"]), float(fields["allocated"])


def main(argv):
    strict = "--strict" in argv
    argv = [a for a in argv if a != "--strict"]
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    if len(argv) > 1 or (argv and argv[0] in ("-h", "--help")):
        sys.exit(__doc__)
    binary = argv[0] if argv else next((b for b in DEFAULT_BINARIES if os.path.exists(b)), None)
    if binary is None:
        sys.exit("bench_containers: no benchmark binary found; pass its path\n\n" + __doc__)

    times, context = run_benchmarks(binary, extra)
    python = cpython_times()

    print("| operation | baseline | size | ours (ns) | baseline (ns) | ratio | goal | pass/fail "
          "| CPython (ns) | × faster than CPython |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    missed = False
    for what, ours, baseline, described, goal, py_key in PAIRS:
        for size in SIZES:
            if (ours, size) not in times or (baseline, size) not in times:
                continue
            t_ours, t_base = times[(ours, size)], times[(baseline, size)]
            ratio = t_ours / t_base
            verdict = "—"
            if goal is not None:
                verdict = "pass" if ratio <= goal else "FAIL"
                missed |= ratio > goal
            py_ns = py_faster = ""
            if py_key and size == CPYTHON_SIZE:
                py_ns = f"{python[py_key]:.1f}"
                py_faster = f"{python[py_key] / t_ours:.1f}×"
            goal_text = f"≤ {goal:.1f}×" if goal is not None else "—"
            print(f"| {what} | {described} | {size} | {t_ours:.1f} | {t_base:.1f} | {ratio:.2f}× "
                  f"| {goal_text} | {verdict} | {py_ns} | {py_faster} |")

    print()
    print("| container | bytes/entry live (allocated) | baseline | bytes/entry live (allocated) "
          "| ratio (live) |")
    print("| --- | ---: | --- | ---: | ---: |")
    for ours, baseline in MEMORY:
        a, b = context.get("memory " + ours), context.get("memory " + baseline)
        if not a or not b:
            continue
        (a_live, a_alloc), (b_live, b_alloc) = parse_memory(a), parse_memory(b)
        print(f"| {ours} | {a_live:.1f} ({a_alloc:.1f}) | {baseline} | {b_live:.1f} "
              f"({b_alloc:.1f}) | {a_live / b_live:.2f}× |")

    print()
    for key in ("mode", "__libc_single_threaded", "num_cpus", "mhz_per_cpu", "library_build_type"):
        if key in context:
            print(f"- {key}: {context[key]}")
    print(f"- CPython: {sys.version.split()[0]}, timeit best of 5, size {CPYTHON_SIZE}")
    return 1 if strict and missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
