#!/usr/bin/env python3
"""bench/gc_benchmark.cpp's graphs in CPython's gc module (stdlib only); tools/perf_cpython.py
adds these rows to its JSON.

Usage: tools/perf_cpython_gc.py [--quick] [--sizes 10000,100000,1000000,10000000]

Prints JSON {"python": version, "times": {op: {size: ns per object}}, "memory": {key: bytes}}
with the ops of bench/gc_benchmark.cpp:
  gc.collect.garbage      gc.collect() of N objects in 2-cycles, all garbage (frees them)
  gc.collect.live         gc.collect() of N objects in 2-cycles, each cycle held from a list
  gc.make_shared.tracked  creating and dropping one such object
  gc.get_referrers        gc.get_referrers(x) of a second object of a cycle among N live objects
                          in 2-cycles held from a list (also the row of gc.why_alive: CPython has
                          no why_alive, and get_referrers is the scan it would start with)
  (gc.collect.ephemerons has no CPython row: a WeakKeyDictionary whose value owns its key is a
  leak there, gh-88846)
The graphs are built with the collector disabled, after gc.freeze() (so a collection examines
the graph, not the interpreter's own objects), and only gc.collect() is timed, in thread CPU
time like the C++ side: the median over several builds (garbage) or collections (live).
"""
import gc
import json
import statistics
import sys
import time
import timeit
import tracemalloc

SIZES = (10000, 100000, 1000000, 10000000)


class Node:
    """C++: struct gc_node { std::shared_ptr<gc_node> other; traverse }, made by
    weakref::make_shared (tracked)."""
    __slots__ = ("other", "__weakref__")


def build_pairs(n, roots=None):
    """n objects in n / 2 two-cycles; the first of each appended to `roots` if given."""
    for _ in range(n // 2):
        a = Node()
        b = Node()
        a.other = b
        b.other = a
        if roots is not None:
            roots.append(a)


def samples_for(n, quick):
    if quick:
        return 1
    return 15 if n <= 100000 else 5 if n <= 1000000 else 3


def collect_garbage(n, quick):
    """ns per object of gc.collect() freeing n objects in 2-cycles."""
    samples = []
    for _ in range(samples_for(n, quick)):
        build_pairs(n)
        start = time.thread_time()
        freed = gc.collect()
        samples.append(time.thread_time() - start)
        assert freed >= n, (freed, n)
    return statistics.median(samples) / n * 1e9


def collect_live(n, quick):
    """ns per object of gc.collect() over n live objects in 2-cycles held from a list."""
    roots = []
    build_pairs(n, roots)
    gc.collect()  # the first one moves them to the oldest generation; time the next ones
    samples = []
    for _ in range(samples_for(n, quick)):
        start = time.thread_time()
        freed = gc.collect()
        samples.append(time.thread_time() - start)
        assert freed == 0, freed
    for a in roots:  # break the cycles by hand: nothing left for the next collection
        a.other = None
    del roots
    return statistics.median(samples) / n * 1e9


QUERY_SIZES = (100000, 1000000)


def get_referrers(n, quick):
    """ns per object of gc.get_referrers(x) over n live objects in 2-cycles held from a list."""
    roots = []
    build_pairs(n, roots)
    target = roots[len(roots) // 2].other
    samples = []
    for _ in range(samples_for(n, quick)):
        start = time.thread_time()
        found = gc.get_referrers(target)
        samples.append(time.thread_time() - start)
        assert len(found) == 1, len(found)
        del found
    for a in roots:
        a.other = None
    del roots, target
    return statistics.median(samples) / n * 1e9


def gc_times(sizes=SIZES, quick=False):
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    gc.freeze()  # the interpreter's objects: in the permanent generation, not examined
    try:
        result = {"gc.collect.garbage": {}, "gc.collect.live": {}}
        for n in sizes:
            result["gc.collect.garbage"][str(n)] = collect_garbage(n, quick)
            result["gc.collect.live"][str(n)] = collect_live(n, quick)
        result["gc.get_referrers"] = {str(n): get_referrers(n, quick) for n in QUERY_SIZES}
        result["gc.why_alive"] = dict(result["gc.get_referrers"])
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()
    timer = timeit.Timer("Node()", globals={"Node": Node})  # timeit disables gc meanwhile
    number = 10 if quick else timer.autorange()[0]
    repeats = 1 if quick else 5
    t = statistics.median(timer.repeat(repeat=repeats, number=number)) / number
    empty = min(timeit.Timer("pass").repeat(repeat=repeats, number=number)) / number
    result["gc.make_shared.tracked"] = {"": max(t - empty, 0.0) * 1e9}
    return result


def gc_memory(n=20000):
    """Heap bytes per Node (its 8-byte reference in a list not counted, as perf_cpython.py)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [None] * n
    for i in range(n):
        kept[i] = Node()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return {"object.tracked": (after - before) / n - 8}


def main(argv):
    quick = "--quick" in argv
    sizes = SIZES
    if "--sizes" in argv:
        sizes = tuple(int(s) for s in argv[argv.index("--sizes") + 1].split(","))
    json.dump({"python": sys.version.split()[0], "times": gc_times(sizes, quick),
               "memory": gc_memory()}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
