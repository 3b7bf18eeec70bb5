"""Seeded generator of valid difftest scenarios (see LANGUAGE.md, "Writing valid scenarios").

`generate(seed)` returns the scenario's lines. The same seed always gives the same scenario.

Validity is kept without simulating deaths, by rules that hold whatever dies when:
- Ownership: every object gets a rank when created (top-level `new` only), and `own P C` needs
  rank(P) < rank(C), except among the cycle-capable objects of a gc scenario (below). Nested
  ops never `new`, `own` or `hold`, so a name used in a callback names either the object the
  generator knew or nothing.
- Cycles and the collector: a share of the scenarios (GC_SCENARIOS) build cycles and call `gc`.
  There each object is created either cycle-capable or plain. Cycle-capable objects own each
  other in any direction (themselves too); plain objects are never owned by a cycle-capable
  one, so a plain object is never garbage and never dies inside a `gc`. The order in which one
  collection calls back different objects is not part of the contract (LANGUAGE.md), so a
  callback on a cycle-capable object gets only a nested op that neither changes anything
  another callback reads nor reads anything another callback may change (SAFE_NESTED), and
  `hascb` never names a ref to a cycle-capable object (CPython keeps `__callback__` set after
  the collector freed the referent; the library reads false). The objects of a gc scenario
  are at most MAX_GC_OBJECTS, which bounds every ownership path.
- Iterations: a container is either iterable ("iter" role: callbacks never name it) or
  callback-touchable ("cb" role: never iterated); weak sets are never iterated. While an
  iteration over C is open (until its `close`), no line names C, except `iter` on a wkd.
- Iteration ops never appear nested.
- Ownership chains stay short (CPython defers deallocation in very deep chains).

Weights favour deaths inside callbacks (nested `drop`, `delref`, container mutations) and
deaths while iterations are suspended; in gc scenarios, garbage with callbacks, finalizers,
container entries and weak references held inside it.
"""

import random

OBJECT_NAMES = list("ABCDEGHLNP")  # no letter that starts another kind's names
WKD_VALUES = ["a", "b", "c", "d"]
WVD_KEYS = ["k1", "k2", "k3", "k4"]
MAX_CHAIN = 5  # objects in the longest ownership chain
MAX_NESTING = 2  # callbacks whose nested op makes a ref with a callback, and so on
GC_SCENARIOS = 0.35  # share of scenarios that build cycles and call `gc`
CYCLIC_SHARE = 0.6  # in those, the share of objects created cycle-capable
MAX_GC_OBJECTS = 16  # objects created in a gc scenario: bounds every ownership path


class Model:
    """What the generator knows: names per kind, object ranks, container roles, open iterations."""

    def __init__(self):
        self.rank = {}  # object name -> rank of the object it names (latest top-level new)
        self.bound = set()  # object names not dropped at top level (a callback may drop them)
        self.next_rank = 0
        self.edges = set()  # (parent rank, child rank) ever owned
        self.wrefs = {}  # weak reference name -> "ref" | "proxy" | "wmethod"
        self.conts = {}  # container name -> "wkd" | "wvd" | "ws"
        self.role = {}  # container name -> "iter" | "cb"
        self.open_iters = {}  # iteration name -> container name
        self.members = {}  # container name -> {object name: key token or None} ever inserted
        self.fins = []
        self.counters = {}
        self.cyclic = set()  # ranks of cycle-capable objects (gc scenarios)
        self.back_edges = set()  # (parent rank, child rank) owned against rank order, or self
        self.cyclic_refs = set()  # weak reference names ever bound to a cycle-capable object

    def fresh(self, prefix):
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return f"{prefix}{self.counters[prefix]}"

    def busy(self, c):
        return c in self.open_iters.values()

    def is_cyclic(self, name):
        return name in self.rank and self.rank[name] in self.cyclic

    def chain_len_through(self, parent, child):
        """Longest ownership chain (in objects) that an edge parent -> child would create."""
        edges = self.edges | {(parent, child)}

        def down(r):
            return 1 + max((down(c) for p, c in edges if p == r), default=0)

        def up(r):
            return 1 + max((up(p) for p, c in edges if c == r), default=0)

        return up(parent) + down(child)


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.m = Model()
        self.lines = []
        self.gc = self.rng.random() < GC_SCENARIOS  # builds cycles and calls `gc`

    # -- small helpers --------------------------------------------------------------------

    def chance(self, p):
        return self.rng.random() < p

    def pick(self, seq):
        return self.rng.choice(sorted(seq)) if seq else None

    def some_object(self):
        """A bound object name mostly; sometimes any name ever used (maybe unbound)."""
        if self.m.bound and not self.chance(0.07):
            return self.pick(self.m.bound)
        return self.pick(self.m.rank) or self.rng.choice(OBJECT_NAMES)

    def some_wref(self, kinds=("ref", "proxy", "wmethod")):
        return self.pick([n for n, k in self.m.wrefs.items() if k in kinds])

    def containers(self, kinds=("wkd", "wvd", "ws"), for_callback=False):
        """Containers a line may name now (never a busy one; callbacks only cb-role ones)."""
        names = [c for c, k in self.m.conts.items() if k in kinds and not self.m.busy(c)]
        if for_callback:
            names = [c for c in names if self.m.role[c] == "cb"]
        return names

    def callback_tail(self, depth, target):
        """`cb` and maybe a nested op, for a ref/proxy/wmethod on `target` at this depth."""
        if self.gc and self.m.is_cyclic(target):
            nested = self.safe_nested_op()
        else:
            nested = self.nested_op(depth + 1, target)
        return " cb" + (" " + nested if nested else "")

    # -- top-level ops ----------------------------------------------------------------------

    def op_new(self, cyclic=None):
        if self.gc and self.m.next_rank >= MAX_GC_OBJECTS:
            return None
        free = [n for n in OBJECT_NAMES if n not in self.m.bound]
        name = self.rng.choice(free) if free and not self.chance(0.15) else self.rng.choice(
            OBJECT_NAMES)
        self.m.rank[name] = self.m.next_rank
        if self.gc and (cyclic if cyclic is not None else self.chance(CYCLIC_SHARE)):
            self.m.cyclic.add(self.m.next_rank)
        self.m.next_rank += 1
        self.m.bound.add(name)
        return f"new {name}"

    def op_drop(self):
        name = self.some_object()
        iterated = {x for c in self.m.open_iters.values() for x in self.m.members.get(c, {})}
        if iterated & self.m.bound and self.chance(0.7):
            name = self.pick(iterated & self.m.bound)  # a death while an iteration is suspended
        self.m.bound.discard(name)
        return f"drop {name}"

    def may_own(self, p, c):
        """Whether `own p c` along rank order keeps the rules (chain length, no plain object
        owned by a cycle-capable one)."""
        return (self.m.rank[p] < self.m.rank[c]
                and (self.m.is_cyclic(c) or not self.m.is_cyclic(p))
                and self.m.chain_len_through(self.m.rank[p], self.m.rank[c]) <= MAX_CHAIN)

    def op_own(self):
        owners = [p for p in self.m.bound for c in self.m.bound
                  if self.m.rank[p] < self.m.rank[c]]
        if not owners:
            return None
        p = self.pick(owners)
        kids = [c for c in self.m.bound if self.may_own(p, c)]
        if not kids:
            return None
        c = self.pick(kids)
        self.m.edges.add((self.m.rank[p], self.m.rank[c]))
        return f"own {p} {c}"

    def op_disown(self):
        edges = [(p, c) for p in self.m.bound for c in self.m.bound
                 if (self.m.rank[p], self.m.rank[c]) in self.m.edges | self.m.back_edges]
        if not edges:
            return None
        p, c = self.rng.choice(sorted(edges))
        return f"disown {p} {c}"

    def op_weak(self, depth=0):
        """ref / proxy / wmethod, with a callback (and nested op) most of the time."""
        kind = self.rng.choices(["ref", "proxy", "wmethod"], [6, 3, 2])[0]
        name = self.m.fresh({"ref": "r", "proxy": "p", "wmethod": "m"}[kind])
        if self.m.wrefs and self.chance(0.04):
            name = self.pick(self.m.wrefs)  # rebinding releases the old handle
        self.m.wrefs[name] = kind
        target = self.some_object()
        self.note_target(name, target)
        tail = self.callback_tail(depth, target) if depth < MAX_NESTING and self.chance(0.7) else ""
        return f"{kind} {name} {target}{tail}"

    def note_target(self, ref, target):
        if self.m.is_cyclic(target):
            self.m.cyclic_refs.add(ref)

    def op_container(self):
        if len(self.m.conts) >= 5:
            return None
        sets = sum(k == "ws" for k in self.m.conts.values())
        kind = self.rng.choices(["wkd", "wvd", "ws"], [4, 4, 6 if sets == 1 else 3])[0]
        name = self.m.fresh({"wkd": "K", "wvd": "V", "ws": "S"}[kind])
        self.m.conts[name] = kind
        self.m.role[name] = "cb" if kind == "ws" or self.chance(0.5) else "iter"
        return f"{kind} {name}"

    def op_iter(self):
        cands = [c for c, k in self.m.conts.items() if self.m.role[c] == "iter"
                 and k != "ws" and (not self.m.busy(c) or k == "wkd")]
        if not cands:
            return None
        return self.op_iter_on(self.pick(cands))

    def iteration_episode(self):
        """Fill an iterable container, iterate it, and kill members (and others) on the way:
        deaths while the iteration is suspended, of its current item too."""
        cands = [c for c, k in self.m.conts.items() if self.m.role[c] == "iter"
                 and k != "ws" and not self.m.busy(c)]
        if not cands or not self.m.bound:
            return None
        c = self.pick(cands)
        kind = self.m.conts[c]
        lines = []
        for x in self.rng.sample(sorted(self.m.bound), min(len(self.m.bound), 3)):
            key = self.rng.choice(WVD_KEYS) if kind == "wvd" else x
            value = x if kind == "wvd" else self.rng.choice(WKD_VALUES)
            self.note_member(c, x, key if kind == "wvd" else None)
            lines.append(f"set {c} {key} {value}")
            if self.chance(0.4):
                lines.append(self.op_weak_on(x))
        lines.append(self.op_iter_on(c))
        for _ in range(self.rng.randint(2, 8)):
            step = self.rng.choices([self.op_drop, self.op_next, self.op_weak, self.op_query,
                                     self.op_container_access], [5, 5, 1, 1, 1])[0]()
            if step is not None:
                lines.append(step)
        if self.chance(0.8):
            lines.append(self.op_close())
        return lines

    def op_weak_on(self, x):
        name = self.m.fresh("r")
        self.m.wrefs[name] = "ref"
        self.note_target(name, x)
        return f"ref {name} {x}{self.callback_tail(0, x)}"

    def op_iter_on(self, c):
        name = self.m.fresh("I")
        self.m.open_iters[name] = c
        return f"iter {name} {c}"

    def op_next(self):
        return f"next {self.pick(self.m.open_iters)}" if self.m.open_iters else None

    def op_close(self):
        if not self.m.open_iters:
            return None
        name = self.pick(self.m.open_iters)
        del self.m.open_iters[name]
        return f"close {name}"

    def op_fin(self):
        name = self.m.fresh("F")
        self.m.fins.append(name)
        return f"fin {name} {self.some_object()}" + (" raise" if self.chance(0.2) else "")

    def op_copy(self):
        src = self.pick(self.containers())
        if src is None:
            return None
        targets = [c for c in self.containers() if c != src]
        if targets and self.chance(0.3):
            dst = self.pick(targets)
        else:
            dst = self.m.fresh({"wkd": "K", "wvd": "V", "ws": "S"}[self.m.conts[src]])
            self.m.role[dst] = "cb" if self.m.conts[src] == "ws" else self.rng.choice(
                ["cb", "iter"])
        self.m.conts[dst] = self.m.conts[src]
        return f"copy {dst} {src}"

    def op_two_containers(self):
        """update / eqc on two containers of one kind, or the weak set algebra."""
        c = self.pick(self.containers())
        if c is None:
            return None
        kind = self.m.conts[c]
        other = self.pick([d for d in self.containers((kind,)) if d != c])
        if other is None:
            return None
        if kind != "ws":
            return f"{self.rng.choice(['update', 'eqc'])} {c} {other}"
        # No `iand`: CPython's WeakSet &= loses the removal callbacks, a deliberate difference
        # (LANGUAGE.md, "Deliberate differences") that no single trace line can map.
        op = self.rng.choice(["update", "eqc", "union", "inter", "minus", "symdiff", "ior",
                              "isub", "ixor", "subset", "superset", "disjoint"])
        if op in ("union", "inter", "minus", "symdiff"):
            result = self.m.fresh("S")
            self.m.conts[result] = "ws"
            self.m.role[result] = "cb"
            return f"{op} {result} {c} {other}"
        return f"{op} {c} {other}"

    def op_fin_query(self):
        if not self.m.fins:
            return None
        f = self.pick(self.m.fins)
        op = self.rng.choices(["fincall", "findetach", "finalive", "finatexit", "atexit"],
                              [3, 3, 2, 2, 1])[0]
        return f"finatexit {f} {self.rng.choice('01')}" if op == "finatexit" else f"{op} {f}"

    def op_dropc(self):
        c = self.pick(self.containers())
        if c is None:
            return None
        del self.m.conts[c]
        return f"dropc {c}"

    # -- ops usable at top level and nested --------------------------------------------------

    def op_container_access(self, for_callback=False):
        names = self.containers(for_callback=for_callback)
        if not names:
            return None
        c = self.pick(names)
        kind = self.m.conts[c]
        obj = self.some_object
        if kind == "ws":
            op = self.rng.choices(["add", "discard", "remove", "has", "len", "items", "clear"],
                                  [8, 2, 2, 2, 3, 3, 1])[0]
            if op in ("len", "items", "clear"):
                return f"{op} {c}"
            x = obj()
            if op == "add":
                self.note_member(c, x, None)
            return f"{op} {c} {x}"
        key = obj if kind == "wkd" else (lambda: self.rng.choice(WVD_KEYS))
        value = (lambda: self.rng.choice(WKD_VALUES)) if kind == "wkd" else obj
        op = self.rng.choices(
            ["set", "get", "has", "pop", "del", "setdefault", "popitem", "len", "items", "keys",
             "at", "clear"], [10, 2, 2, 2, 2, 2, 2, 3, 3, 1, 1, 0.5])[0]
        if op in ("set", "setdefault"):
            k, v = key(), value()
            self.note_member(c, v if kind == "wvd" else k, k if kind == "wvd" else None)
            return f"{op} {c} {k} {v}"
        if op in ("get", "has", "pop", "del", "at"):
            return f"{op} {c} {key()}"
        return f"{op} {c}"

    def note_member(self, c, x, key):
        self.m.members.setdefault(c, {})[x] = key

    def op_access_dying(self, target):
        """A nested op on a container holding `target`, the object whose callback runs it: the
        entry may still be there, dead (the callback is newer than the entry) or already gone."""
        holders = [c for c in self.containers(for_callback=True)
                   if target in self.m.members.get(c, {})]
        if not holders:
            return None
        c = self.pick(holders)
        kind, key = self.m.conts[c], self.m.members[c][target]
        if kind == "wvd" and key is not None:
            op = self.rng.choice(["del", "pop", "get", "has", "at", "set", "setdefault", "len",
                                  "items", "popitem"])
            if op in ("set", "setdefault"):
                return f"{op} {c} {key} {self.some_object()}"
            return f"{op} {c} {key}" if op not in ("len", "items", "popitem") else f"{op} {c}"
        op = self.rng.choice(["len", "items", "clear"] + (["popitem", "keys"] if kind == "wkd"
                                                         else []))
        return f"{op} {c}"

    def op_query(self):
        """count / refs / deref / alive / hascb / eq: reads that never change anything."""
        op = self.rng.choices(["count", "refs", "deref", "alive", "hascb", "eq"],
                              [3, 3, 4, 2, 1, 2])[0]
        if op in ("count", "refs"):
            return f"{op} {self.some_object()}"
        if op == "hascb":
            r = self.pick([n for n, k in self.m.wrefs.items()
                           if k == "ref" and n not in self.m.cyclic_refs])
            return f"hascb {r}" if r else None
        if op == "eq":
            kind = self.rng.choice(["ref", "wmethod"])
            names = [n for n, k in self.m.wrefs.items() if k == kind]
            if len(names) < 2:
                return None
            a, b = self.rng.sample(sorted(names), 2)
            return f"eq {a} {b}"
        r = self.some_wref()
        return f"{op} {r}" if r else None

    def op_delref(self):
        r = self.some_wref()
        return f"delref {r}" if r else None

    # -- nested ops (run inside a callback, at a time the generator does not know) ----------

    def nested_op(self, depth, target):
        choices = [
            (8, lambda: self.op_access_dying(target)),
            (3, lambda: None),
            (12, self.op_drop_nested),
            (5, self.op_delref),
            (1, self.op_disown),
            (2, lambda: "raise"),
            (6, self.op_query),
            (10, lambda: self.op_container_access(for_callback=True)),
            (1.5, lambda: self.op_dropc_nested()),
            (2.5, lambda: self.op_weak(depth) if depth < MAX_NESTING else None),
            (2, self.op_fin_query),
            (1 if self.gc else 0, lambda: "gc"),
        ]
        weights, makers = zip(*choices)
        for _ in range(5):
            op = self.rng.choices(makers, weights)[0]()
            if op is not None:
                return op
        return None

    def op_drop_nested(self):
        # When it runs is unknown: guess half the time that it has run (fewer unbound names).
        name = self.some_object()
        if self.chance(0.5):
            self.m.bound.discard(name)
        return f"drop {name}"

    def op_dropc_nested(self):
        c = self.pick(self.containers(for_callback=True))
        return f"dropc {c}" if c else None

    # -- cycles and the collector (gc scenarios) ---------------------------------------------

    def safe_nested_op(self):
        """The nested op of a callback on a cycle-capable object: one whose output does not
        depend on which other callbacks of the same collection ran first, and that changes
        nothing they read. Reads of weak references qualify: every weak reference to the
        garbage reads dead before any callback, and nothing else dies during a collection."""
        op = self.rng.choices(["", "raise", "gc", "deref", "alive", "eq"],
                              [4, 1, 1, 3, 1.5, 1])[0]
        if op in ("deref", "alive"):
            r = self.some_wref()
            return f"{op} {r}" if r else None
        if op == "eq":
            kind = self.rng.choice(["ref", "wmethod"])
            names = sorted(n for n, k in self.m.wrefs.items() if k == kind)
            return f"eq {' '.join(self.rng.sample(names, 2))}" if len(names) >= 2 else None
        return op or None

    def cyclic_bound(self):
        return sorted(x for x in self.m.bound if self.m.is_cyclic(x))

    def own_cyclic(self, p, c):
        """`own p c` between cycle-capable objects, in any direction (a back edge does not
        count towards MAX_CHAIN: MAX_GC_OBJECTS bounds those paths)."""
        rp, rc = self.m.rank[p], self.m.rank[c]
        if rp < rc:
            if self.m.chain_len_through(rp, rc) > MAX_CHAIN:
                return None
            self.m.edges.add((rp, rc))
        else:
            self.m.back_edges.add((rp, rc))
        return f"own {p} {c}"

    def op_cycle(self):
        """A cycle among cycle-capable objects: a self-cycle, a back edge, or a ring."""
        names = self.cyclic_bound()
        if not names:
            return None
        shape = self.rng.choices(["self", "back", "ring"], [2, 3, 3])[0]
        if shape == "self" or len(names) == 1:
            return self.own_cyclic(self.rng.choice(names), self.rng.choice(names))
        ring = self.rng.sample(names, min(len(names), self.rng.choice([2, 2, 3])))
        if shape == "back":
            return self.own_cyclic(*sorted(ring[:2], key=self.m.rank.get, reverse=True))
        lines = [self.own_cyclic(a, b) for a, b in zip(ring, ring[1:] + ring[:1])]
        return [line for line in lines if line]

    def op_hold(self):
        r = self.some_wref()
        cyclic = self.cyclic_bound()
        holder = self.pick(cyclic) if cyclic and self.chance(0.75) else self.some_object()
        return f"hold {holder} {r}" if r else None

    def gc_episode(self):
        """Garbage made on purpose: cycle-capable objects (new or not) own each other, get
        callbacks, finalizers, container entries and weak references to keep, lose their
        names, and a collection frees them. Sometimes one keeps its name (it and what it
        reaches survive), sometimes a kept ref loses its variable (held only by garbage)."""
        lines = []
        for _ in range(self.rng.choice([0, 1, 2])):
            made = self.op_new(cyclic=True)
            if made:
                lines.append(made)
        names = self.cyclic_bound()
        if not names:
            return None
        group = self.rng.sample(names, min(len(names), self.rng.choice([1, 2, 2, 3])))
        if len(group) == 1:
            lines.append(self.own_cyclic(group[0], group[0]))
        else:
            lines += [self.own_cyclic(a, b) for a, b in zip(group, group[1:] + group[:1])]
        for x in group:
            for _ in range(self.rng.choice([0, 1, 1, 2])):
                made = self.gc_decoration(x, group)
                lines += made if isinstance(made, list) else [made]
        for x in group:
            if self.chance(0.85):
                self.m.bound.discard(x)
                lines.append(f"drop {x}")
        lines.append("gc")
        for _ in range(self.rng.choice([0, 1, 2])):
            lines.append(self.rng.choice([self.op_query, self.op_container_access])())
        return [line for line in lines if line]

    def gc_decoration(self, x, group):
        """One thing on (or in) the object x of a garbage group."""
        what = self.rng.choices(["ref", "fin", "entry", "hold", "hold-only"], [5, 2, 3, 2, 2])[0]
        if what == "ref":
            kind = self.rng.choices(["ref", "proxy", "wmethod"], [6, 2, 2])[0]
            name = self.m.fresh({"ref": "r", "proxy": "p", "wmethod": "m"}[kind])
            self.m.wrefs[name] = kind
            self.note_target(name, x)
            return f"{kind} {name} {x}" + (self.callback_tail(0, x) if self.chance(0.85) else "")
        if what == "fin":
            name = self.m.fresh("F")
            self.m.fins.append(name)
            return f"fin {name} {x}" + (" raise" if self.chance(0.15) else "")
        if what == "entry":
            names = self.containers()
            if not names:
                return None
            c = self.pick(names)
            kind = self.m.conts[c]
            if kind == "ws":
                self.note_member(c, x, None)
                return f"add {c} {x}"
            if kind == "wkd":
                self.note_member(c, x, None)
                return f"set {c} {x} {self.rng.choice(WKD_VALUES)}"
            key = self.rng.choice(WVD_KEYS)
            self.note_member(c, x, key)
            return f"set {c} {key} {x}"
        # `hold`: x keeps a ref (with a callback) to a member of its group, or to anything; for
        # "hold-only" the ref's variable goes, so only the garbage holds it.
        target = self.rng.choice(group) if self.chance(0.7) else self.some_object()
        kind = self.rng.choices(["ref", "proxy", "wmethod"], [6, 2, 2])[0]
        name = self.m.fresh({"ref": "r", "proxy": "p", "wmethod": "m"}[kind])
        self.m.wrefs[name] = kind
        self.note_target(name, target)
        lines = [f"{kind} {name} {target}{self.callback_tail(0, target)}", f"hold {x} {name}"]
        if what == "hold-only":
            del self.m.wrefs[name]
            lines.append(f"delref {name}")
        return lines

    # -- the scenario -----------------------------------------------------------------------

    def weights(self):
        iterating = bool(self.m.open_iters)
        few_objects = len(self.m.bound) < 3
        return [
            (40 if few_objects else 5, self.op_new),
            (14 if iterating else 8, self.op_drop),
            (6, self.op_own),
            (1.5, self.op_disown),
            (14, self.op_weak),
            (2.5, self.op_delref),
            (6, self.op_query),
            (1.5, self.op_container),
            (16, self.op_container_access),
            (1, self.op_iter),
            (5 if not iterating else 0, self.iteration_episode),
            (12 if iterating else 0, self.op_next),
            (3 if iterating else 0, self.op_close),
            (3, self.op_fin),
            (3, self.op_fin_query),
            (1, self.op_copy),
            (4, self.op_two_containers),
            (0.4, self.op_dropc),
            (3 if self.gc else 0.5, self.op_hold),
            (3 if self.gc else 0, self.op_cycle),
            (3 if self.gc else 0, lambda: "gc"),
            (4 if self.gc else 0, self.gc_episode),
        ]

    def setup(self):
        for _ in range(self.rng.randint(2, 4)):
            self.lines.append(self.op_new())
        for _ in range(self.rng.randint(1, 3)):
            self.lines.append(self.op_container())

    def run(self, length):
        self.setup()
        while len(self.lines) < length:
            weights, makers = zip(*self.weights())
            made = self.rng.choices(makers, weights)[0]()
            if isinstance(made, list):
                self.lines += made
            elif made is not None:
                self.lines.append(made)
        return self.lines[:length]  # a prefix of a valid scenario is valid


def generate(seed):
    """The scenario for `seed`: 20 to 80 top-level lines."""
    rng = random.Random(seed)
    return Generator(rng.randrange(2**63)).run(rng.randint(20, 80))


if __name__ == "__main__":
    import sys

    print("\n".join(generate(int(sys.argv[1]) if len(sys.argv) > 1 else 1)))
