#!/usr/bin/env python3
"""Reference runner of the difftest scenario language, on CPython's own `weakref`.

Reads one scenario (tools/difftest/LANGUAGE.md) on stdin, writes its trace to stdout, exits 0.
Standard library only. The C++ runner (weakref_difftest) must print the same trace, up to the
deliberate differences that difftest.py maps; for those this runner writes notes to stderr.
"""

import atexit
import gc
import os
import sys
import weakref

# ---------------------------------------------------------------------------------------------
# Output


class Trace:
    """Stdout lines, counted so that stderr notes can name a line by its 0-based index.

    While a `gc` runs, lines go to a buffer instead (one per running `gc`, innermost last): the
    `gc` op prints them sorted once the collection is over (LANGUAGE.md, "Cycles and the
    collector"), so a line's index is known only then.
    """

    def __init__(self):
        self.lines = 0
        self.buffers = []  # one list of (line, eq-after-death?) per `gc` running

    def out(self, line, eq_after_death=False):
        if self.buffers:
            self.buffers[-1].append((line, eq_after_death))
            return
        if eq_after_death:
            # This `eq` line answers differently by design (see difftest.py).
            sys.stderr.write(f"deliberate eq-after-death {self.lines}\n")
        sys.stdout.write(line + "\n")
        self.lines += 1


TRACE = Trace()


def out(line):
    TRACE.out(line)


# ---------------------------------------------------------------------------------------------
# The objects of a scenario


class Deaths:
    """How many scenario objects have died so far (what `gc N` reports the change of)."""

    count = 0


class Tombstone:
    """Counts its owner's death: each Obj holds the only reference to one, in its last slot.

    The count lives here rather than in an Obj.__del__, so that Obj keeps no finalizer of its
    own: its deallocation and CPython's collection of it stay exactly what is under test. (In a
    collection the tombstone is garbage too and its __del__ runs there, before the Obj is
    freed: still inside gc.collect(), which is all `gc N` needs.)
    """

    __slots__ = ()

    def __del__(self):
        Deaths.count += 1


class Obj:
    """A named object owning an insertion-ordered set of children and a list of weak
    references (`hold`).

    Slots, so that dealloc runs the weakref callbacks first and then clears the slots in the
    order of their names (CPython sorts __slots__): `children`, whose dict releases its keys in
    insertion order, then `held`, then the rest. That is the order the language prescribes.
    """

    __slots__ = ("children", "held", "name", "tombstone", "__weakref__")

    def __init__(self, name):
        self.name = name
        self.children = {}  # child object -> None; a dict keyed by identity keeps order
        self.held = []  # weak reference objects (refs, proxies, weak methods) kept by `hold`
        self.tombstone = Tombstone()

    def meth(self):
        return self.name


class Unbound(Exception):
    """An op named a variable that is not bound (in the table of its kind)."""


class ScenarioRaise(RuntimeError):
    """What the `raise` op (nested after `cb`, or `fin F X raise`) throws."""


class WrongKind(Exception):
    """An op was applied to a container (or weak reference) kind that does not support it."""


class Binding:
    """A ref/proxy/wmethod variable: the weak reference object, its kind, and the name of the
    variable that first held that object (what `shared-with` and `refs` print)."""

    __slots__ = ("obj", "kind", "first")

    def __init__(self, obj, kind, first):
        self.obj = obj
        self.kind = kind
        self.first = first


class Iteration:
    """A suspended iteration over a wkd or wvd: a generator of CPython's `items()`, which holds
    the item it last yielded (key and value) strongly until it moves on or is closed."""

    __slots__ = ("gen", "kind")

    def __init__(self, gen, kind):
        self.gen = gen
        self.kind = kind


CONTAINER_TYPES = {
    "wkd": weakref.WeakKeyDictionary,
    "wvd": weakref.WeakValueDictionary,
    "ws": weakref.WeakSet,
}


class State:
    """The five name tables. Module-global (see main) so nothing dies when main() returns."""

    def __init__(self):
        self.objs = {}        # name -> Obj
        self.wrefs = {}       # name -> Binding (refs, proxies and weak methods)
        self.conts = {}       # name -> (kind, container)
        self.iters = {}       # name -> Iteration
        self.fins = {}        # name -> (weakref.finalize, object name)

    def obj(self, name):
        if name not in self.objs:
            raise Unbound(name)
        return self.objs[name]

    def wref(self, name):
        if name not in self.wrefs:
            raise Unbound(name)
        return self.wrefs[name]

    def cont(self, name, *kinds):
        if name not in self.conts:
            raise Unbound(name)
        kind, c = self.conts[name]
        if kinds and kind not in kinds:
            raise WrongKind(name)
        return kind, c

    def fin(self, name):
        if name not in self.fins:
            raise Unbound(name)
        return self.fins[name]


STATE = State()

# ---------------------------------------------------------------------------------------------
# Callbacks


def make_callback(name, nested):
    """A weakref callback that prints `cb NAME`, then runs the nested op (without echo)."""

    def callback(_weak):
        out(f"cb {name}")
        if nested:
            execute(nested)

    return callback


def make_finalizer_func(name, raising):
    def func():
        out(f"fin {name}")
        if raising:
            raise ScenarioRaise(name)

    return func


def report_unraisable(exc_type, exc_value, exc_tb):
    out("unraisable")
    if not issubclass(exc_type, ScenarioRaise):
        # Anything but `raise` means an invalid scenario or a runner bug: tell the driver.
        internal_error(exc_type, exc_value, exc_tb)


def internal_error(exc_type, exc_value, exc_tb):
    import traceback  # only on this rare path: importing it costs more than a whole scenario

    lines = traceback.format_exception(exc_type, exc_value, exc_tb)
    sys.stderr.write("INTERNAL " + "".join(lines))


def install_hooks():
    # Callback and finalizer exceptions at death go to sys.unraisablehook; finalize's exit run
    # reports a failing finalizer through sys.excepthook instead. Both print the same line.
    sys.unraisablehook = lambda u: report_unraisable(u.exc_type, u.exc_value, u.exc_traceback)
    sys.excepthook = report_unraisable


# ---------------------------------------------------------------------------------------------
# Objects


def op_new(x):
    # The new object is bound before the earlier X is released, and by then only the binding
    # holds it: a callback of the earlier X's death that drops X kills the new one right there.
    # (`STATE.objs[x] = Obj(x)` would release the earlier X while the new one is still on the
    # interpreter's stack, which keeps it alive until every one of those callbacks ran.)
    new, earlier = Obj(x), STATE.objs.get(x)
    STATE.objs[x] = new
    del new
    del earlier


def op_drop(x):
    obj = STATE.objs.pop(x) if x in STATE.objs else None
    if obj is None:
        raise Unbound(x)
    del obj  # X is already unbound when its object dies


def op_own(p, c):
    parent, child = STATE.obj(p), STATE.obj(c)
    parent.children[child] = None  # owning twice keeps the first position


def op_disown(p, c):
    parent, child = STATE.obj(p), STATE.obj(c)
    parent.children.pop(child, None)


def op_hold(p, r):
    parent, weak = STATE.obj(p), STATE.wref(r).obj
    parent.held.append(weak)  # the weak reference object itself: a ref held only by garbage is
    # garbage too, and CPython's collector never calls it back


# ---------------------------------------------------------------------------------------------
# The collector


def op_gc():
    """A full collection. What runs meanwhile prints sorted, then `gc N`: the scenario objects
    that died while gc.collect() ran. Inside a collection (from a callback) gc.collect() does
    nothing and returns 0, as the library's collect()."""
    TRACE.buffers.append([])
    before = Deaths.count
    try:
        gc.collect()
    finally:
        printed = TRACE.buffers.pop()
    died = Deaths.count - before
    for line, eq_after_death in sorted(printed):
        TRACE.out(line, eq_after_death)
    out(f"gc {died}")


# ---------------------------------------------------------------------------------------------
# Weak references


def first_holder(weak):
    """Name of the variable that first held `weak` if a bound variable still holds it."""
    for binding in STATE.wrefs.values():
        if binding.obj is weak:
            return binding.first
    return None


def parse_callback(rest, op):
    """`[cb [op...]]` after the target: (has_callback, nested op tokens)."""
    if not rest:
        return False, []
    if rest[0] != "cb":
        raise SyntaxError(op)
    return True, rest[1:]


def op_ref_or_proxy(op, r, x, *rest):
    obj = STATE.obj(x)
    has_cb, nested = parse_callback(rest, op)
    factory = weakref.ref if op == "ref" else weakref.proxy
    if has_cb:
        weak = factory(obj, make_callback(r, nested))
        first = r
    else:
        weak = factory(obj)
        first = first_holder(weak)
        if first is not None:
            out(f"{op} {r} shared-with {first}")
        else:
            first = r
    STATE.wrefs[r] = Binding(weak, op, first)


def op_wmethod(m, x, *rest):
    obj = STATE.obj(x)
    has_cb, nested = parse_callback(rest, "wmethod")
    callback = make_callback(m, nested) if has_cb else None
    STATE.wrefs[m] = Binding(weakref.WeakMethod(obj.meth, callback), "wmethod", m)


def op_delref(r):
    binding = STATE.wrefs.pop(r) if r in STATE.wrefs else None
    if binding is None:
        raise Unbound(r)
    del binding


def referent_alive(binding):
    if binding.kind == "proxy":
        try:
            binding.obj.name
        except ReferenceError:
            return False
        return True
    return binding.obj() is not None


def op_deref(r):
    binding = STATE.wref(r)
    if binding.kind == "proxy":
        try:
            out(f"deref {r} {binding.obj.name}")
        except ReferenceError:
            out(f"deref {r} ReferenceError")
    elif binding.kind == "wmethod":
        method = binding.obj()
        out(f"deref {r} {method() if method is not None else None}")
    else:
        obj = binding.obj()
        out(f"deref {r} {obj.name if obj is not None else None}")


def op_eq(r1, r2):
    a, b = STATE.wref(r1), STATE.wref(r2)
    # refs with refs, weak methods with weak methods (extension); proxies have no ==.
    if a.kind != b.kind or a.kind == "proxy":
        raise WrongKind(r1)
    dead = not referent_alive(a) or not referent_alive(b)
    TRACE.out(f"eq {r1} {r2} {a.obj == b.obj}", eq_after_death=dead)


def op_alive(r):
    out(f"alive {r} {referent_alive(STATE.wref(r))}")


def op_hascb(r):
    binding = STATE.wref(r)
    if binding.kind != "ref":
        raise WrongKind(r)
    out(f"hascb {r} {binding.obj.__callback__ is not None}")


def op_count(x):
    out(f"count {x} {weakref.getweakrefcount(STATE.obj(x))}")


def op_refs(x):
    names = []
    for weak in weakref.getweakrefs(STATE.obj(x)):
        name = None
        for binding in STATE.wrefs.values():
            if binding.obj is weak and binding.kind in ("ref", "proxy"):
                name = binding.first
                break
        names.append(name if name is not None else "<internal>")
    out(f"refs {x} {names!r}")


# ---------------------------------------------------------------------------------------------
# Containers: the key of wkd/ws and the value of wvd are object names, the rest tokens.

MISSING = "MISSING"


def key_of(kind, k):
    return STATE.obj(k) if kind in ("wkd", "ws") else k


def show_value(kind, v):
    return v.name if kind == "wvd" else v


def show_key(kind, k):
    return k if kind == "wvd" else k.name


def op_container(kind, c):
    # The new container is bound before an earlier C is destroyed.
    STATE.conts[c] = (kind, CONTAINER_TYPES[kind]())


def op_dropc(c):
    entry = STATE.conts.pop(c) if c in STATE.conts else None
    if entry is None:
        raise Unbound(c)
    del entry


def op_set(c, k, v):
    kind, d = STATE.cont(c, "wkd", "wvd")
    if kind == "wkd":
        d[STATE.obj(k)] = v
    else:
        d[k] = STATE.obj(v)


def op_get(c, k):
    kind, d = STATE.cont(c, "wkd", "wvd")
    v = d.get(key_of(kind, k))
    out(f"get {c} {k} {show_value(kind, v) if v is not None else MISSING}")


def op_at(c, k):
    kind, d = STATE.cont(c, "wkd", "wvd")
    try:
        v = d[key_of(kind, k)]
    except KeyError:
        out("EXC at KeyError")
        return
    out(f"at {c} {k} {show_value(kind, v)}")


def op_has(c, k):
    kind, d = STATE.cont(c)
    out(f"has {c} {k} {key_of(kind, k) in d}")


def op_pop(c, k):
    kind, d = STATE.cont(c, "wkd", "wvd")
    v = d.pop(key_of(kind, k), None)
    out(f"pop {c} {k} {show_value(kind, v) if v is not None else MISSING}")


def op_del(c, k):
    kind, d = STATE.cont(c, "wkd", "wvd")
    key = key_of(kind, k)
    try:
        del d[key]
    except KeyError:
        out("EXC del KeyError")


def op_setdefault(c, k, v):
    kind, d = STATE.cont(c, "wkd", "wvd")
    if kind == "wkd":
        result = d.setdefault(STATE.obj(k), v)
    else:
        result = d.setdefault(k, STATE.obj(v))
    out(f"setdefault {c} {k} {show_value(kind, result)}")


def op_popitem(c):
    kind, d = STATE.cont(c, "wkd", "wvd")
    try:
        key, value = d.popitem()
    except KeyError:
        out("EXC popitem KeyError")
        return
    out(f"popitem {c} {show_key(kind, key)} {show_value(kind, value)}")


def op_len(c):
    _, d = STATE.cont(c)
    out(f"len {c} {len(d)}")


def op_items(c):
    kind, d = STATE.cont(c)
    if kind == "ws":
        shown = sorted(x.name for x in d)
    else:
        shown = [(show_key(kind, k), show_value(kind, v)) for k, v in d.items()]
    out(f"items {c} {shown!r}")


def op_keys(c):
    kind, d = STATE.cont(c, "wkd", "wvd")
    out(f"keys {c} {[show_key(kind, k) for k in d.keys()]!r}")


def op_clear(c):
    STATE.cont(c)[1].clear()


def op_add(c, x):
    STATE.cont(c, "ws")[1].add(STATE.obj(x))


def op_discard(c, x):
    STATE.cont(c, "ws")[1].discard(STATE.obj(x))


def op_remove(c, x):
    s = STATE.cont(c, "ws")[1]
    try:
        s.remove(STATE.obj(x))
    except KeyError:
        out("EXC remove KeyError")


def op_copy(dst, src):
    kind, s = STATE.cont(src)
    STATE.conts[dst] = (kind, s.copy())


def op_update(c, src):
    kind, d = STATE.cont(c)
    d.update(STATE.cont(src, kind)[1])


def two_sets(a, b):
    return STATE.cont(a, "ws")[1], STATE.cont(b, "ws")[1]


SET_RESULTS = {
    "union": lambda a, b: a | b,
    "inter": lambda a, b: a & b,
    "minus": lambda a, b: a - b,
    "symdiff": lambda a, b: a ^ b,
}


def op_set_result(op, r, a, b):
    sa, sb = two_sets(a, b)
    STATE.conts[r] = ("ws", SET_RESULTS[op](sa, sb))


def op_set_inplace(op, a, b):
    sa, sb = two_sets(a, b)
    if op == "ior":
        sa |= sb
    elif op == "iand":
        sa &= sb
    elif op == "isub":
        sa -= sb
    else:
        sa ^= sb


SET_PREDICATES = {
    "subset": lambda a, b: a.issubset(b),
    "superset": lambda a, b: a.issuperset(b),
    "disjoint": lambda a, b: a.isdisjoint(b),
}


def op_set_predicate(op, a, b):
    sa, sb = two_sets(a, b)
    out(f"{op} {a} {b} {SET_PREDICATES[op](sa, sb)}")


def op_eqc(a, b):
    kind, ca = STATE.cont(a)
    cb = STATE.cont(b, kind)[1]
    out(f"eqc {a} {b} {ca == cb}")


# ---------------------------------------------------------------------------------------------
# Iterations


def advance(name, gen, kind, verb):
    item = next(gen, None)
    shown = "END" if item is None else show_key(kind, item[0])
    del item  # the generator itself holds the current item
    out(f"{verb} {name} {shown}")


def op_iter(i, c):
    kind, d = STATE.cont(c, "wkd", "wvd")
    gen = d.items()  # CPython's guard starts at the first next(), taken right away
    advance(i, gen, kind, "iter")
    STATE.iters[i] = Iteration(gen, kind)  # an earlier I is closed by being released here


def op_next(i):
    if i not in STATE.iters:
        raise Unbound(i)
    it = STATE.iters[i]
    advance(i, it.gen, it.kind, "next")


def op_close(i):
    it = STATE.iters.pop(i) if i in STATE.iters else None
    if it is None:
        raise Unbound(i)
    it.gen.close()  # ends the guard and releases the held item (which may die here)


# ---------------------------------------------------------------------------------------------
# Finalizers


def op_fin(f, x, *rest):
    if rest not in ((), ("raise",)):
        raise SyntaxError("fin")
    obj = STATE.obj(x)
    STATE.fins[f] = (weakref.finalize(obj, make_finalizer_func(f, bool(rest))), x)


def op_fincall(f):
    fin, _ = STATE.fin(f)
    try:
        fin()
    except ScenarioRaise:
        out("EXC fincall RuntimeError")


def op_findetach(f):
    fin, _ = STATE.fin(f)
    detached = fin.detach()  # (obj, func, args, kwargs) or None
    out(f"detach {f} {detached[0].name if detached is not None else None}")


def op_finalive(f):
    out(f"alive {f} {STATE.fin(f)[0].alive}")


def op_finatexit(f, flag=None):
    fin, _ = STATE.fin(f)
    if flag is None:
        raise SyntaxError("finatexit")
    fin.atexit = flag == "1"


def op_atexit(f):
    out(f"atexit {f} {STATE.fin(f)[0].atexit}")


def op_raise():
    raise ScenarioRaise("raise")


# ---------------------------------------------------------------------------------------------
# Dispatch

OPS = {
    "new": op_new, "drop": op_drop, "own": op_own, "disown": op_disown, "hold": op_hold,
    "gc": op_gc,
    "ref": lambda *a: op_ref_or_proxy("ref", *a),
    "proxy": lambda *a: op_ref_or_proxy("proxy", *a),
    "wmethod": op_wmethod, "delref": op_delref, "deref": op_deref, "eq": op_eq,
    "alive": op_alive, "hascb": op_hascb, "count": op_count, "refs": op_refs,
    "wkd": lambda c: op_container("wkd", c), "wvd": lambda c: op_container("wvd", c),
    "ws": lambda c: op_container("ws", c), "dropc": op_dropc,
    "set": op_set, "get": op_get, "at": op_at, "has": op_has, "pop": op_pop, "del": op_del,
    "setdefault": op_setdefault, "popitem": op_popitem, "len": op_len, "items": op_items,
    "keys": op_keys, "clear": op_clear, "add": op_add, "discard": op_discard,
    "remove": op_remove, "copy": op_copy, "update": op_update,
    "subset": lambda *a: op_set_predicate("subset", *a),
    "superset": lambda *a: op_set_predicate("superset", *a),
    "disjoint": lambda *a: op_set_predicate("disjoint", *a),
    "eqc": op_eqc, "iter": op_iter, "next": op_next, "close": op_close,
    "fin": op_fin, "fincall": op_fincall, "findetach": op_findetach, "finalive": op_finalive,
    "finatexit": op_finatexit, "atexit": op_atexit, "raise": op_raise,
}
for _name in SET_RESULTS:
    OPS[_name] = (lambda n: lambda *a: op_set_result(n, *a))(_name)
for _name in ("ior", "iand", "isub", "ixor"):
    OPS[_name] = (lambda n: lambda *a: op_set_inplace(n, *a))(_name)

# Ops whose tail may be a nested op line: they take any number of tokens.
VARIADIC = {"ref", "proxy", "wmethod", "fin"}


def execute(tokens):
    """Run one op (top-level or nested). `raise` (RuntimeError) propagates on purpose: inside a
    callback it reaches the unraisable hook; at top level main() reports it."""
    op, args = tokens[0], tokens[1:]
    handler = OPS.get(op)
    try:
        if handler is None:
            raise SyntaxError(op)
        handler(*args)
    except Unbound:
        out(f"EXC {op} KeyError")
    except WrongKind:
        out(f"EXC {op} TypeError")
    except (SyntaxError, TypeError) as error:
        # Outside the language (unknown op, wrong arity): make it visible in the trace.
        out(f"INVALID {' '.join(tokens)}")
        sys.stderr.write(f"INTERNAL invalid line {' '.join(tokens)!r}: {error!r}\n")


def run(lines):
    for raw in lines:
        tokens = raw.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        out("> " + " ".join(tokens))
        try:
            execute(tokens)
        except ScenarioRaise:
            out(f"EXC {tokens[0]} RuntimeError")  # a top-level `raise` (outside the language)
    out("END-OF-SCRIPT")


def hard_exit():
    # Registered before any finalize, so it runs after finalize's exit hook (atexit is LIFO).
    # Skipping interpreter teardown keeps the scenario's objects from dying (and printing)
    # after the exit-time finalizers, which is where the trace ends.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main():
    gc.disable()
    atexit.register(hard_exit)
    install_hooks()
    run(sys.stdin.read().splitlines())
    # Returning lets the interpreter run atexit: weakref.finalize's exit run, then hard_exit.


if __name__ == "__main__":
    main()
