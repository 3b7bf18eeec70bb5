#!/usr/bin/env python3
"""The benchmark scenarios of bench/ in CPython's weakref module (stdlib only).

Usage: tools/perf_cpython.py [--quick] [--sizes 10,1000,1000000]
                             [--gc-sizes 10000,100000,1000000,10000000]

Prints JSON: {"python": version, "times": {op: {size: ns per operation}}, "memory": {key: bytes}}
with the same op and memory keys as the C++ benchmarks (bench/*.cpp, bench/memory_report.cpp),
so tools/perf_report.py can add a "× faster than CPython" column. Size "" is for operations
without a size; death/k uses k as its size. Single operations are timed with timeit (median of
5 autoranged repeats, less an empty statement's cost); batch operations (insert, erase, death)
time only the batch, like the C++ side, median over many batches. The cycle collector's rows
(bench/gc_benchmark.cpp: gc.collect() of the same graphs, ns per object) come from
tools/perf_cpython_gc.py.
"""
import gc
import json
import statistics
import sys
import timeit
import tracemalloc
import weakref

sys.dont_write_bytecode = True  # no tools/__pycache__ from the import below
import perf_cpython_gc  # noqa: E402 (tools/, next to this script)

BATCH = 64  # as bench/containers_benchmark.cpp: min(size, 64) entries per batch


class Obj:
    """A weakly referenceable object holding one value (C++: make_shared<int>)."""
    __slots__ = ("v", "__weakref__")

    def __init__(self, v=1):
        self.v = v


class Obj64:
    """Eight 8-byte slots (C++: a 64-byte type)."""
    __slots__ = ("a", "b", "c", "d", "e", "f", "g", "h", "__weakref__")


class Item:
    """The containers' objects and observers (C++: bench/items.hpp)."""
    __slots__ = ("id", "__weakref__")

    def __init__(self, i):
        self.id = i

    def notify(self):
        return self.id

    def get(self):
        return self.id


def key_of(i):
    """The C++ keys: i * 0x9E3779B1 mod 2**32 as a signed int (distinct for distinct i)."""
    k = (i * 0x9E3779B1) & 0xFFFFFFFF
    return k - (1 << 32) if k >= 1 << 31 else k


QUICK = False


def per_op(stmt, env, ops=1):
    """ns per operation of `stmt` (which performs `ops` operations): median of 5 autoranged
    repeats (1 in --quick mode), less the cost of `pass` at the same number of loops."""
    timer = timeit.Timer(stmt, globals=env)
    number = 10 if QUICK else timer.autorange()[0]
    repeats = 1 if QUICK else 5
    t = statistics.median(timer.repeat(repeat=repeats, number=number)) / number
    empty = min(timeit.Timer("pass").repeat(repeat=repeats, number=number)) / number
    return max(t - empty, 0.0) / ops * 1e9


def per_batch_op(untimed, timed, ops, budget=0.2):
    """ns per operation of timed() (`ops` operations), after untimed() each time: the median
    over batches run for about `budget` seconds."""
    clock = timeit.default_timer
    samples = []
    end = clock() + (0.01 if QUICK else budget)
    while clock() < end or len(samples) < 5:
        untimed()
        start = clock()
        timed()
        samples.append(clock() - start)
    return statistics.median(samples) / ops * 1e9


def core_times():
    """The scenarios of bench/ref_benchmark.cpp and make_shared_benchmark.cpp."""
    o = Item(1)
    dead = Item(2)
    dead_ref = weakref.ref(dead)
    del dead
    canonical = weakref.ref(o)  # so ref(o) finds it
    fresh = Item(3)  # no ref yet: ref(fresh) makes one and drops it

    def callback(_):
        pass

    def fire(_):
        pass

    env = {"Obj": Obj, "Obj64": Obj64, "ref": weakref.ref, "r": canonical, "dead": dead_ref,
           "o": o, "fresh": fresh, "cb": callback, "p": weakref.proxy(o),
           "m": weakref.WeakMethod(o.get), "finalize": weakref.finalize, "fire": fire}
    times = {
        "make_shared.int": per_op("Obj()", env),
        "make_shared.bytes64": per_op("Obj64()", env),
        "ref.lock": per_op("r()", env),
        "ref.lock_dead": per_op("dead()", env),
        "ref.create": per_op("ref(o)", env),
        "ref.create_first": per_op("ref(fresh)", env),
        "ref.create_callback": per_op("ref(o, cb)", env),
        "proxy.access": per_op("p.get()", env),
        "weak_method.call": per_op("m()()", env),
        "finalize.create_fire": per_op("x = Obj()\nfinalize(x, fire, 1)\ndel x", env),
    }
    result = {op: {"": ns} for op, ns in times.items()}
    result["death"] = {}
    for k in (0, 1, 8):
        refs = "".join(f"r{i} = ref(x, cb)\n" for i in range(k))
        drop = "".join(f"del r{i}\n" for i in range(k))
        result["death"][str(k)] = per_op(f"x = Obj()\n{refs}del x\n{drop}", env)
    return result


class ContainerCase:
    """One weak container and its operations, as bench/containers_benchmark.cpp's adaptors."""

    def __init__(self, kind, n):
        self.kind, self.n = kind, n
        self.batch = min(n, BATCH)
        self.residents = [Item(i) for i in range(n)]
        self.strangers = [Item(n + self.batch + j) for j in range(1024)]
        self.batch_objects = [Item(n + j) for j in range(self.batch)]
        if kind == "weak_value_map":
            self.c = weakref.WeakValueDictionary((key_of(i), o) for i, o in enumerate(self.residents))
            self.probe = lambda i, o: key_of(i)
        elif kind == "weak_key_map":
            self.c = weakref.WeakKeyDictionary((o, o.id) for o in self.residents)
            self.probe = lambda i, o: o
        else:
            self.c = weakref.WeakSet(self.residents)
            self.probe = lambda i, o: o
        self.batch_probes = [self.probe(n + j, o) for j, o in enumerate(self.batch_objects)]

    def insert_batch(self, probes, objects):
        c = self.c
        if self.kind == "weak_value_map":
            for k, o in zip(probes, objects):
                c[k] = o
        elif self.kind == "weak_key_map":
            for o in objects:
                c[o] = o.id
        else:
            for o in objects:
                c.add(o)

    def erase_batch(self, probes):
        c = self.c
        if self.kind == "weak_set":
            for o in probes:
                c.discard(o)
        else:
            for k in probes:
                c.pop(k, None)

    def times(self):
        import random
        rng = random.Random(42)
        n, c = self.n, self.c
        count = min(max(1024, n), 1 << 16)
        hits = [self.probe(p, self.residents[p]) for p in (rng.randrange(n) for _ in range(count))]
        misses = [self.probe(n + self.batch + j, o) for j, o in enumerate(self.strangers)]
        lookup = "for x in probes: x in c" if self.kind == "weak_set" else \
            "for x in probes: get(x)"
        env = {"c": c, "get": getattr(c, "get", None)}
        if self.kind == "weak_value_map":
            iterate = "total = 0\nfor k, v in c.items(): total += v.id"
        elif self.kind == "weak_key_map":
            iterate = "total = 0\nfor k, v in c.items(): total += v"
        else:
            iterate = "total = 0\nfor o in c: total += o.notify()"
        t = {
            "lookup_hit": per_op(lookup, dict(env, probes=hits), len(hits)),
            "lookup_miss": per_op(lookup, dict(env, probes=misses), len(misses)),
            "iterate": per_op(iterate, env, n),
        }
        probes, objects = self.batch_probes, self.batch_objects
        t["insert"] = per_batch_op(lambda: self.erase_batch(probes),
                                   lambda: self.insert_batch(probes, objects), self.batch)
        self.erase_batch(probes)
        t["erase"] = per_batch_op(lambda: self.insert_batch(probes, objects),
                                  lambda: self.erase_batch(probes), self.batch)
        owners = []

        def make_batch():
            owners[:] = [Item(n + j) for j in range(self.batch)]
            self.insert_batch([self.probe(n + j, o) for j, o in enumerate(owners)], owners)

        t["death"] = per_batch_op(make_batch, owners.clear, self.batch)  # callbacks remove them
        assert len(c) == n, (self.kind, len(c), n)
        return t


def container_times(sizes):
    result = {}
    for kind in ("weak_value_map", "weak_key_map", "weak_set"):
        for n in sizes:
            case = ContainerCase(kind, n)
            for op, ns in case.times().items():
                result.setdefault(f"{kind}.{op}", {})[str(n)] = ns
            del case
            gc.collect()
    # The event bus is weak_set iterate + call; subscribing is WeakSet.add.
    result["event_bus.emit"] = dict(result["weak_set.iterate"])
    result["event_bus.connect"] = dict(result["weak_set.insert"])
    return result


def traced_bytes(make, n=20000):
    """Heap bytes per instance while n results of make(i) are kept (in a list, 8 bytes a slot:
    the reference a handle is, like sizeof in C++)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [None] * n
    for i in range(n):
        kept[i] = make(i)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / n


def per_entry_bytes(fill, n=20000):
    """Heap bytes per entry of a container filled with n entries (objects already exist)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    c = fill(n)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del c
    return (after - before) / n


def memory(n=20000):
    objs = [Item(i) for i in range(n)]
    one = objs[0]
    canonical = weakref.ref(one)  # noqa: F841 (ref(one) finds it)

    def cb(_):
        pass

    def fire(_):
        pass

    return {
        "object.int": traced_bytes(lambda i: Obj(1)) - 8,
        "object.bytes64": traced_bytes(lambda i: Obj64()) - 8,
        "ref.first": traced_bytes(lambda i: weakref.ref(objs[i])),
        "ref.more": traced_bytes(lambda i: weakref.ref(one)),
        "ref.callback": traced_bytes(lambda i: weakref.ref(objs[i], cb)),
        "proxy.first": traced_bytes(lambda i: weakref.proxy(objs[i])),
        "weak_method": traced_bytes(lambda i: weakref.WeakMethod(objs[i].notify)),
        "finalize": traced_bytes(lambda i: weakref.finalize(objs[i], fire, i)),
        "weak_value_map.entry": per_entry_bytes(
            lambda n: weakref.WeakValueDictionary((key_of(i), objs[i]) for i in range(n))),
        "weak_key_map.entry": per_entry_bytes(
            lambda n: weakref.WeakKeyDictionary((objs[i], i) for i in range(n))),
        "weak_set.entry": per_entry_bytes(lambda n: weakref.WeakSet(objs[i] for i in range(n))),
    }


def main(argv):
    global QUICK
    QUICK = "--quick" in argv
    sizes = (10, 1000, 1000000)
    if "--sizes" in argv:
        sizes = tuple(int(s) for s in argv[argv.index("--sizes") + 1].split(","))
    gc_sizes = perf_cpython_gc.SIZES
    if "--gc-sizes" in argv:
        gc_sizes = tuple(int(s) for s in argv[argv.index("--gc-sizes") + 1].split(","))
    times = core_times()
    times.update(container_times(sizes))
    times.update(perf_cpython_gc.gc_times(gc_sizes, QUICK))
    mem = memory()
    mem.update(perf_cpython_gc.gc_memory())
    json.dump({"python": sys.version.split()[0], "times": times, "memory": mem},
              sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
