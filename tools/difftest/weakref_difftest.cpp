// weakref_difftest — the C++ runner of the differential test against CPython.
//
// Reads one scenario (the language in tools/difftest/LANGUAGE.md) on stdin, runs it through the
// weakref library and writes the trace to stdout; tools/difftest/difftest.py compares it with
// the trace runner.py produces on CPython. Exit status 0 whatever the scenario did.
// weakref_difftest_fuzz.cpp includes this file, without main, as a libFuzzer target.
//
// Rules that shape this file:
// - Callbacks run nested ops while another op is killing an object, so a handler never keeps a
//   reference into a name table across anything that can kill: values are moved out of their
//   slot, the slot is erased, and only then is the value released (as CPython's dict does).
// - Results holding strong references (pop, popitem, get, ...) are released after printing,
//   as a Python local would be, so the deaths they cause print after the result line.
// - The state is never destroyed: what is still alive at the end must not die (no callbacks
//   after END-OF-SCRIPT); only the finalizers' exit run prints then, from std::atexit.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "weakref/gc.hpp"
#include "weakref/weakref.hpp"

namespace {

// ---- output -------------------------------------------------------------------------------

// While a `gc` runs, lines go to its buffer (innermost last): it prints them sorted when the
// collection is over (LANGUAGE.md, "Cycles and the collector").
std::vector<std::vector<std::string>>& gc_buffers() {
  static auto* b = new std::vector<std::vector<std::string>>;
  return *b;
}

// Where lines go instead of stdout when set (the fuzz target, weakref_difftest_fuzz.cpp).
std::string*& trace_sink() {
  static std::string* sink = nullptr;
  return sink;
}

// stdout directly (not a buffer of ours): finalizers print from the library's std::atexit hook,
// after main returned; stdio is flushed after every atexit handler ran.
void emit(const std::string& line) {
  if (!gc_buffers().empty()) {
    gc_buffers().back().push_back(line);
    return;
  }
  if (auto* sink = trace_sink()) {
    *sink += line;
    *sink += '\n';
    return;
  }
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
}

// Python's repr of a str, for the tokens of this language (no whitespace).
std::string py_repr(const std::string& s) {
  char quote = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, quote);
  for (char c : s) {
    if (c == quote || c == '\\') out += '\\';
    out += c;
  }
  return out + quote;
}

std::string py_list(const std::vector<std::string>& reprs) {
  std::string out = "[";
  for (std::size_t i = 0; i < reprs.size(); ++i) out += (i ? ", " : "") + reprs[i];
  return out + "]";
}

std::string py_bool(bool b) { return b ? "True" : "False"; }

// ---- the scenario's values ----------------------------------------------------------------

// Deaths of scenario objects, for `gc N` (the runner's own count, not collect()'s answer).
struct death_count {
  std::size_t all = 0;             // every scenario object that died so far
  std::size_t in_callbacks = 0;    // of those, deaths inside a callback (one that the
                                   // innermost running `gc` ran, if one runs)
  unsigned callback_depth = 0;     // callbacks (and finalizers) running now, nested
  unsigned gc_callback_depth = 0;  // callback_depth when the innermost running `gc` began
};
death_count& deaths() {
  static death_count d;
  return d;
}

// Marks a callback or finalizer as running (deaths it causes are not the collector's own).
struct in_callback {
  in_callback() { ++deaths().callback_depth; }
  ~in_callback() { --deaths().callback_depth; }
  in_callback(const in_callback&) = delete;
  in_callback& operator=(const in_callback&) = delete;
};

struct obj;
using wmethod = weakref::weak_method<obj, std::string>;
using weak_handle = std::variant<weakref::ref<obj>, weakref::proxy<obj>, wmethod>;

// A scenario object: a name, an insertion-ordered set of strongly held children, and the weak
// references it keeps (`hold`). Its traverse shows both, so weakref::gc tracks it: the
// collector frees garbage cycles of them, and does not call back a weak reference all of
// whose handles are in garbage (CPython's rule for a weakref that is itself garbage).
struct obj {
  explicit obj(std::string n) : name(std::move(n)) {}
  obj(const obj&) = delete;
  obj& operator=(const obj&) = delete;
  // Children go in insertion order (std::vector's own destructor does not promise one), then
  // the weak references it holds: a child's death still calls back a ref only this one holds.
  ~obj() {
    auto& d = deaths();
    ++d.all;
    if (d.callback_depth > d.gc_callback_depth) ++d.in_callbacks;
    auto kids = std::move(children);
    for (auto& kid : kids) kid.reset();
    auto refs = std::move(held);
    for (auto& r : refs) r = weakref::ref<obj>();
  }
  std::string meth() const { return name; }  // what the weak methods call

  template <class V>
  void traverse(V& visit) {
    visit("children", children);
    visit("held", held);
  }

  std::string name;
  std::vector<std::shared_ptr<obj>> children;
  std::vector<weak_handle> held;
};
using obj_ptr = std::shared_ptr<obj>;

using wkd = weakref::weak_key_map<obj, std::string>;
using wvd = weakref::weak_value_map<std::string, obj>;
using ws = weakref::weak_set<obj>;
using container = std::variant<wkd, wvd, ws>;

// An iteration over a wkd or wvd: holds its container (a Python generator holds its dict) until
// it is exhausted or closed; the container's own iterator holds the current element strongly.
struct iteration {
  std::shared_ptr<container> owner;  // declared first: the iterator goes before its container
  std::variant<wkd::iterator, wvd::iterator> at;
  bool busy = false;  // inside next(): Python's "generator already executing"
};

struct finalizer_var {
  weakref::finalize handle;
  std::string object_name;  // what CPython's detach() returns, by name
};

// Name tables, one per kind. The runner's state is never destroyed (see the top comment).
struct state {
  std::map<std::string, obj_ptr> objects;
  std::map<std::string, weak_handle> weak;  // refs, proxies and weak methods
  std::map<std::string, std::shared_ptr<container>> containers;
  std::map<std::string, std::shared_ptr<iteration>> iterations;
  std::map<std::string, finalizer_var> finalizers;
  // ref/proxy variable -> the variable that first held its weak reference object (runner.py's
  // Binding.first)
  std::map<std::string, std::string> first_of;
};
state& vars() {
  static auto* s = new state;
  return *s;
}

// Errors a handler raises, printed as `EXC <op> <class>`.
struct key_error : std::out_of_range {  // an unbound name: KeyError, nothing changed
  key_error() : std::out_of_range("unbound") {}
};
struct wrong_kind : std::logic_error {  // e.g. `add` on a wkd, `eq` on proxies: TypeError
  wrong_kind() : std::logic_error("wrong kind") {}
};
// next/close of an iteration from a callback inside its own `next` (outside the language). As
// CPython's ValueError "generator already executing", it is not caught per op: it leaves the
// callback and reaches the unraisable hook.
struct value_error : std::logic_error {
  value_error() : std::logic_error("generator already executing") {}
};
struct invalid_line : std::logic_error {  // outside the language: printed as `INVALID <line>`
  invalid_line() : std::logic_error("invalid line") {}
};

template <class Map>
auto& lookup(Map& table, const std::string& name) {
  auto it = table.find(name);
  if (it == table.end()) throw key_error();
  return it->second;
}

// Binds `value` to `name`. A replaced value is released after the table holds the new one:
// its death may run callbacks that change `table`. (Map node handles: no value moves.)
template <class Map, class V>
void bind(Map& table, const std::string& name, V value) {
  auto old = table.extract(name);
  table.emplace(name, std::move(value));
}

// Unbinds `name`: the slot leaves the table before its value is released.
template <class Map>
void unbind(Map& table, const std::string& name) {
  if (!table.extract(name)) throw key_error();
}

obj_ptr object(const std::string& name) { return lookup(vars().objects, name); }

// A container of kind C (held by the caller, so it outlives deaths that unbind its name).
template <class C>
std::pair<std::shared_ptr<container>, C*> container_as(const std::string& name) {
  auto held = lookup(vars().containers, name);
  auto* c = std::get_if<C>(held.get());
  if (!c) throw wrong_kind();
  return {held, c};
}

// ---- naming weak reference objects --------------------------------------------------------

// The first name of the ref/proxy variable now holding the weak reference object `h` holds
// (weakref::same_ref: Python's `is` between weakrefs), if one does.
template <class H>
const std::string* holder_name(const H& h) {
  auto& v = vars();
  for (const auto& [name, other] : v.weak) {
    if (std::holds_alternative<wmethod>(other)) continue;
    if (std::visit([&](const auto& x) { return weakref::same_ref(h, x); }, other)) {
      return &v.first_of.at(name);
    }
  }
  return nullptr;
}

// ---- ops ----------------------------------------------------------------------------------

struct command {
  std::string op;
  std::vector<std::string> args;
  const std::string& at(std::size_t i) const {
    if (i >= args.size()) throw invalid_line();
    return args[i];
  }
  // `[cb [op...]]` after the target (args[2] on): whether there is a callback.
  bool has_callback() const {
    if (args.size() > 2 && args[2] != "cb") throw invalid_line();
    return args.size() > 2;
  }
  // The tokens from args[i] on, as one line (the op after `cb`).
  std::string rest(std::size_t i) const {
    std::string out;
    for (; i < args.size(); ++i) out += (out.empty() ? "" : " ") + args[i];
    return out;
  }
};

void run_line(const std::string& line, bool top_level);

// A callback: prints `cb <name>`, then runs the op after `cb` unechoed (`raise`: throws).
auto callback(const std::string& name, std::string nested) {
  return [name, nested] {
    in_callback running;
    emit("cb " + name);
    if (nested == "raise") throw std::runtime_error("raise");
    if (!nested.empty()) run_line(nested, false);
  };
}

// Binds a new ref/proxy variable, printing `shared-with` when it is the canonical weak
// reference object an earlier variable still holds.
void bind_weak(const command& c, weak_handle h) {
  std::string first = c.at(0);
  if (!std::holds_alternative<wmethod>(h)) {
    auto* earlier = std::visit([](const auto& x) { return holder_name(x); }, h);
    if (earlier) {
      emit(c.op + " " + c.at(0) + " shared-with " + *earlier);
      first = *earlier;
    }
  }
  vars().first_of[c.at(0)] = std::move(first);  // first: the old value's death may look it up
  bind(vars().weak, c.at(0), std::move(h));
}

// Objects.
void op_new(const command& c) { bind(vars().objects, c.at(0), weakref::make_shared<obj>(c.at(0))); }
void op_drop(const command& c) { unbind(vars().objects, c.at(0)); }
void op_own(const command& c) {
  auto parent = object(c.at(0));
  auto child = object(c.at(1));
  auto& kids = parent->children;
  if (std::find(kids.begin(), kids.end(), child) == kids.end()) kids.push_back(child);
}
void op_disown(const command& c) {
  auto parent = object(c.at(0));
  auto child = object(c.at(1));
  auto& kids = parent->children;
  auto it = std::find(kids.begin(), kids.end(), child);
  if (it == kids.end()) return;
  auto released = std::move(*it);
  kids.erase(it);
}  // `released`, then `child`: a death can only happen once the op is done with `kids`
void op_hold(const command& c) {
  auto parent = object(c.at(0));
  auto weak = lookup(vars().weak, c.at(1));  // a copy: another handle of the same reference
  parent->held.push_back(std::move(weak));
}

// The collector: a full collection; what runs meanwhile prints sorted, then `gc N`, the scenario
// objects that died meanwhile. Inside a collection (from a callback) collect() returns 0 and
// does nothing, as CPython's gc.collect().
void op_gc(const command&) {
  auto& d = deaths();
  auto before = d.all;
  auto before_in_callbacks = d.in_callbacks;
  auto outer_depth = std::exchange(d.gc_callback_depth, d.callback_depth);
  gc_buffers().emplace_back();
  std::size_t collected = 0;
  try {
    collected = weakref::gc::collect();
  } catch (...) {
    d.gc_callback_depth = outer_depth;
    gc_buffers().pop_back();
    throw;
  }
  d.gc_callback_depth = outer_depth;
  auto printed = std::move(gc_buffers().back());
  gc_buffers().pop_back();
  std::sort(printed.begin(), printed.end());
  for (const auto& line : printed) emit(line);
  auto died = d.all - before;
  // What collect() says it freed: the deaths outside the callbacks it ran (those are deaths the
  // callbacks' ops caused). A disagreement shows in the trace, as a mismatch.
  if (collected != died - (d.in_callbacks - before_in_callbacks)) {
    emit("collect() returned " + std::to_string(collected) + " but " + std::to_string(died) +
         " objects died, " + std::to_string(d.in_callbacks - before_in_callbacks) +
         " of them in callbacks");
  }
  emit("gc " + std::to_string(died));
}

// Weak references.
void op_ref(const command& c) {
  auto x = object(c.at(1));
  bool cb = c.has_callback();
  if (c.op == "ref") {
    bind_weak(c, cb ? weakref::ref<obj>(x, callback(c.at(0), c.rest(3))) : weakref::ref<obj>(x));
  } else if (c.op == "proxy") {
    bind_weak(c,
              cb ? weakref::proxy<obj>(x, callback(c.at(0), c.rest(3))) : weakref::proxy<obj>(x));
  } else {
    bind_weak(c,
              cb ? wmethod(x, &obj::meth, callback(c.at(0), c.rest(3))) : wmethod(x, &obj::meth));
  }
}
void op_delref(const command& c) { unbind(vars().weak, c.at(0)); }
void op_deref(const command& c) {
  const auto& name = c.at(0);
  auto h = lookup(vars().weak, name);  // a copy: the call below cannot reach the table
  std::string result;
  if (auto* r = std::get_if<weakref::ref<obj>>(&h)) {
    auto x = r->lock();
    result = x ? x->name : "None";
  } else if (auto* p = std::get_if<weakref::proxy<obj>>(&h)) {
    try {
      result = (*p)->name;
    } catch (const weakref::reference_error&) {
      result = "ReferenceError";
    }
  } else {
    result = std::get<wmethod>(h)().value_or("None");
  }
  emit("deref " + name + " " + result);
}
void op_eq(const command& c) {
  auto a = lookup(vars().weak, c.at(0));
  auto b = lookup(vars().weak, c.at(1));
  bool equal;
  if (auto* ra = std::get_if<weakref::ref<obj>>(&a), *rb = std::get_if<weakref::ref<obj>>(&b);
      ra && rb) {
    equal = *ra == *rb;
  } else if (auto* ma = std::get_if<wmethod>(&a), *mb = std::get_if<wmethod>(&b); ma && mb) {
    equal = *ma == *mb;
  } else {
    throw wrong_kind();  // only refs with refs, weak methods with weak methods; proxies: no ==
  }
  emit("eq " + c.at(0) + " " + c.at(1) + " " + py_bool(equal));
}
void op_hascb(const command& c) {
  auto* r = std::get_if<weakref::ref<obj>>(&lookup(vars().weak, c.at(0)));
  if (!r) throw wrong_kind();
  emit("hascb " + c.at(0) + " " + py_bool(r->has_callback()));
}
void op_alive(const command& c) {
  auto& h = lookup(vars().weak, c.at(0));
  emit("alive " + c.at(0) + " " + py_bool(std::visit([](auto& x) { return x.alive(); }, h)));
}
void op_count(const command& c) {
  emit("count " + c.at(0) + " " + std::to_string(weakref::getweakrefcount(object(c.at(0)))));
}
void op_refs(const command& c) {
  std::vector<std::string> names;
  for (const auto& r : weakref::getweakrefs(object(c.at(0)))) {
    auto* name = holder_name(r);
    names.push_back(py_repr(name ? *name : "<internal>"));
  }
  emit("refs " + c.at(0) + " " + py_list(names));
}

// Containers: making and dropping.
void op_make_container(const command& c) {
  auto made = c.op == "wkd"   ? std::make_shared<container>(std::in_place_type<wkd>)
              : c.op == "wvd" ? std::make_shared<container>(std::in_place_type<wvd>)
                              : std::make_shared<container>(std::in_place_type<ws>);
  bind(vars().containers, c.at(0), std::move(made));
}
void op_dropc(const command& c) { unbind(vars().containers, c.at(0)); }
void op_copy(const command& c) {
  auto source = lookup(vars().containers, c.at(1));
  bind(vars().containers, c.at(0),
       std::make_shared<container>(
           std::visit([](const auto& m) { return container(m.copy()); }, *source)));
}
void op_update(const command& c) {
  auto a = lookup(vars().containers, c.at(0));
  auto b = lookup(vars().containers, c.at(1));
  if (a->index() != b->index()) throw wrong_kind();
  std::visit([&](auto& m) { m.update(std::get<std::decay_t<decltype(m)>>(*b)); }, *a);
}
void op_eqc(const command& c) {
  auto a = lookup(vars().containers, c.at(0));
  auto b = lookup(vars().containers, c.at(1));
  if (a->index() != b->index()) throw wrong_kind();
  emit("eqc " + c.at(0) + " " + c.at(1) + " " + py_bool(*a == *b));
}

// Containers: per-kind operations. Each takes the command and the container.
void set_in(const command& c, wkd& m) { m.insert_or_assign(object(c.at(1)), c.at(2)); }
void set_in(const command& c, wvd& m) { m.insert_or_assign(c.at(1), object(c.at(2))); }
void get_in(const command& c, wkd& m) {
  emit("get " + c.at(0) + " " + c.at(1) + " " + m.get(object(c.at(1))).value_or("MISSING"));
}
void get_in(const command& c, wvd& m) {
  auto x = m.get(c.at(1));
  emit("get " + c.at(0) + " " + c.at(1) + " " + (x ? x->name : "MISSING"));
}
void at_in(const command& c, wkd& m) {
  emit("at " + c.at(0) + " " + c.at(1) + " " + m.at(object(c.at(1))));
}
void at_in(const command& c, wvd& m) {
  auto x = m.at(c.at(1));
  emit("at " + c.at(0) + " " + c.at(1) + " " + x->name);
}
bool has_in(const command& c, wkd& m) { return m.contains(object(c.at(1))); }
bool has_in(const command& c, wvd& m) { return m.contains(c.at(1)); }
bool has_in(const command& c, ws& s) { return s.contains(object(c.at(1))); }
void pop_in(const command& c, wkd& m) {
  auto key = object(c.at(1));
  std::string v = m.contains(key) ? m.pop(key) : "MISSING";
  emit("pop " + c.at(0) + " " + c.at(1) + " " + v);
}
void pop_in(const command& c, wvd& m) {
  auto x = m.pop(c.at(1), nullptr);
  emit("pop " + c.at(0) + " " + c.at(1) + " " + (x ? x->name : "MISSING"));
}
void del_in(const command& c, wkd& m) {
  if (!m.erase(object(c.at(1)))) throw std::out_of_range("del");
}
void del_in(const command& c, wvd& m) {
  if (!m.erase(c.at(1))) throw std::out_of_range("del");
}
void setdefault_in(const command& c, wkd& m) {
  auto v = m.setdefault(object(c.at(1)), c.at(2));
  emit("setdefault " + c.at(0) + " " + c.at(1) + " " + v);
}
void setdefault_in(const command& c, wvd& m) {
  auto x = m.setdefault(c.at(1), object(c.at(2)));
  emit("setdefault " + c.at(0) + " " + c.at(1) + " " + x->name);
}
void popitem_in(const command& c, wkd& m) {
  auto [key, v] = m.popitem();
  emit("popitem " + c.at(0) + " " + key->name + " " + v);
}
void popitem_in(const command& c, wvd& m) {
  auto [k, x] = m.popitem();
  emit("popitem " + c.at(0) + " " + k + " " + x->name);
}
std::vector<std::string> items_of(wkd& m) {
  std::vector<std::string> out;
  for (const auto& [key, v] : m.items())
    out.push_back("(" + py_repr(key->name) + ", " + py_repr(v) + ")");
  return out;
}
std::vector<std::string> items_of(wvd& m) {
  std::vector<std::string> out;
  for (const auto& [k, x] : m.items())
    out.push_back("(" + py_repr(k) + ", " + py_repr(x->name) + ")");
  return out;
}
std::vector<std::string> items_of(ws& s) {
  std::vector<std::string> names;
  for (const auto& x : s) names.push_back(x->name);
  std::sort(names.begin(), names.end());
  std::vector<std::string> out;
  for (const auto& n : names) out.push_back(py_repr(n));
  return out;
}
std::vector<std::string> keys_of(wkd& m) {
  std::vector<std::string> out;
  for (const auto& key : m.keys()) out.push_back(py_repr(key->name));
  return out;
}
std::vector<std::string> keys_of(wvd& m) {
  std::vector<std::string> out;
  for (const auto& k : m.keys()) out.push_back(py_repr(k));
  return out;
}

// Runs `f` on the container named by args[0] if `f` accepts its kind, else TypeError. The
// container stays alive (held here) even if a death on the way unbinds its name.
template <class F>
void on_container(const command& c, F f) {
  auto held = lookup(vars().containers, c.at(0));
  std::visit(
      [&](auto& m) {
        if constexpr (std::is_invocable_v<F&, decltype(m)&>) {
          f(m);
        } else {
          throw wrong_kind();
        }
      },
      *held);
}

void op_set(const command& c) {
  on_container(c, [&](auto& m) -> decltype(set_in(c, m)) { set_in(c, m); });
}
void op_get(const command& c) {
  on_container(c, [&](auto& m) -> decltype(get_in(c, m)) { get_in(c, m); });
}
void op_at(const command& c) {
  on_container(c, [&](auto& m) -> decltype(at_in(c, m)) { at_in(c, m); });
}
void op_pop(const command& c) {
  on_container(c, [&](auto& m) -> decltype(pop_in(c, m)) { pop_in(c, m); });
}
void op_del(const command& c) {
  on_container(c, [&](auto& m) -> decltype(del_in(c, m)) { del_in(c, m); });
}
void op_setdefault(const command& c) {
  on_container(c, [&](auto& m) -> decltype(setdefault_in(c, m)) { setdefault_in(c, m); });
}
void op_popitem(const command& c) {
  on_container(c, [&](auto& m) -> decltype(popitem_in(c, m)) { popitem_in(c, m); });
}
void op_has(const command& c) {
  on_container(c, [&](auto& m) -> decltype(has_in(c, m), void()) {
    emit("has " + c.at(0) + " " + c.at(1) + " " + py_bool(has_in(c, m)));
  });
}
void op_len(const command& c) {
  on_container(c, [&](auto& m) { emit("len " + c.at(0) + " " + std::to_string(m.size())); });
}
void op_clear(const command& c) {
  on_container(c, [&](auto& m) { m.clear(); });
}
void op_items(const command& c) {
  on_container(c, [&](auto& m) { emit("items " + c.at(0) + " " + py_list(items_of(m))); });
}
void op_keys(const command& c) {
  on_container(c, [&](auto& m) -> decltype(keys_of(m), void()) {
    emit("keys " + c.at(0) + " " + py_list(keys_of(m)));
  });
}

// Weak sets.
void op_add(const command& c) {
  on_container(c, [&](ws& s) { s.add(object(c.at(1))); });
}
void op_discard(const command& c) {
  on_container(c, [&](ws& s) { s.discard(object(c.at(1))); });
}
void op_remove(const command& c) {
  on_container(c, [&](ws& s) { s.remove(object(c.at(1))); });
}

// Set algebra: `union R A B` and friends make a new set R; `ior A B` and friends change A.
void op_set_algebra(const command& c) {
  auto [a_held, a] = container_as<ws>(c.at(1));
  auto [b_held, b] = container_as<ws>(c.at(2));
  ws result = c.op == "union"   ? *a | *b
              : c.op == "inter" ? *a & *b
              : c.op == "minus" ? *a - *b
                                : *a ^ *b;
  bind(vars().containers, c.at(0), std::make_shared<container>(std::move(result)));
}
void op_set_in_place(const command& c) {
  auto [a_held, a] = container_as<ws>(c.at(0));
  auto [b_held, b] = container_as<ws>(c.at(1));
  if (c.op == "ior") *a |= *b;
  if (c.op == "iand") *a &= *b;
  if (c.op == "isub") *a -= *b;
  if (c.op == "ixor") *a ^= *b;
}
void op_set_compare(const command& c) {
  auto [a_held, a] = container_as<ws>(c.at(0));
  auto [b_held, b] = container_as<ws>(c.at(1));
  bool answer = c.op == "subset"     ? a->issubset(*b)
                : c.op == "superset" ? a->issuperset(*b)
                                     : a->isdisjoint(*b);
  emit(c.op + " " + c.at(0) + " " + c.at(1) + " " + py_bool(answer));
}

// Iterations. The iterator's current element (a wkd key object; a wvd value object, beside the
// printed key token) is held strongly until the iteration moves on or ends.
std::string current_key(const iteration& it) {
  if (auto* k = std::get_if<wkd::iterator>(&it.at)) return (*k)->first->name;
  return std::get<wvd::iterator>(it.at)->first;
}
bool at_end(const iteration& it) {
  return std::visit(
      [&](const auto& i) {
        using M =
            std::conditional_t<std::is_same_v<std::decay_t<decltype(i)>, wkd::iterator>, wkd, wvd>;
        return i == std::get<M>(*it.owner).end();
      },
      it.at);
}
// Prints `<op> I K`, or `<op> I END` and lets the container go (the generator finished).
void report_step(const command& c, iteration& it) {
  if (it.owner && !at_end(it)) {
    emit(c.op + " " + c.at(0) + " " + current_key(it));
    return;
  }
  emit(c.op + " " + c.at(0) + " END");
  it.at = wkd::iterator();  // the end iterator holds nothing; then release the container
  auto owner = std::move(it.owner);
}
void op_iter(const command& c) {
  auto held = lookup(vars().containers, c.at(1));
  auto it = std::make_shared<iteration>();
  it->owner = held;
  if (auto* m = std::get_if<wkd>(held.get())) {
    it->at = m->begin();
  } else if (auto* v = std::get_if<wvd>(held.get())) {
    it->at = v->begin();
  } else {
    throw wrong_kind();  // weak sets are never iterated in order
  }
  report_step(c, *it);
  bind(vars().iterations, c.at(0), std::move(it));
}
void op_next(const command& c) {
  auto it = lookup(vars().iterations, c.at(0));  // held: a callback may close it meanwhile
  if (it->busy) throw value_error();
  if (it->owner) {
    it->busy = true;
    std::visit([](auto& i) { ++i; }, it->at);  // releasing the previous key may kill it
    it->busy = false;
  }
  report_step(c, *it);
}
void op_close(const command& c) {
  auto it = lookup(vars().iterations, c.at(0));  // if busy, its `next` still holds it
  unbind(vars().iterations, c.at(0));
  if (it->busy) throw value_error();
}

// Finalizers.
void op_fin(const command& c) {
  if (c.args.size() > 2 && c.at(2) != "raise") throw invalid_line();
  bool raises = c.args.size() > 2;
  auto x = object(c.at(1));
  weakref::finalize f(x, [name = c.at(0), raises] {
    in_callback running;
    emit("fin " + name);
    if (raises) throw std::runtime_error("raise");
  });
  bind(vars().finalizers, c.at(0), finalizer_var{std::move(f), x->name});
}
void op_fincall(const command& c) {
  auto f = lookup(vars().finalizers, c.at(0)).handle;  // a copy: the call may rebind F
  f();
}
void op_findetach(const command& c) {
  auto& f = lookup(vars().finalizers, c.at(0));
  emit("detach " + c.at(0) + " " + (f.handle.detach() ? f.object_name : "None"));
}
void op_finalive(const command& c) {
  emit("alive " + c.at(0) + " " + py_bool(lookup(vars().finalizers, c.at(0)).handle.alive()));
}
void op_finatexit(const command& c) {
  auto& f = lookup(vars().finalizers, c.at(0));
  f.handle.atexit(c.at(1) == "1");
}
void op_atexit(const command& c) {
  emit("atexit " + c.at(0) + " " + py_bool(lookup(vars().finalizers, c.at(0)).handle.atexit()));
}

// ---- dispatch -----------------------------------------------------------------------------

// Each op with its number of operands (min, max): other counts print INVALID.
struct op_spec {
  void (*run)(const command&);
  std::size_t min, max;
};
constexpr std::size_t any = SIZE_MAX;  // ref/proxy/wmethod/fin: a nested op or `raise` follows

void op_raise(const command&) { throw std::runtime_error("raise"); }

const std::map<std::string_view, op_spec>& ops() {
  // A table reads better in columns.
  // clang-format off
  static const std::map<std::string_view, op_spec> table = {
      // objects
      {"new", {op_new, 1, 1}},        {"drop", {op_drop, 1, 1}},      {"own", {op_own, 2, 2}},
      {"disown", {op_disown, 2, 2}},  {"hold", {op_hold, 2, 2}},
      // the collector
      {"gc", {op_gc, 0, 0}},
      // weak references
      {"ref", {op_ref, 2, any}},      {"proxy", {op_ref, 2, any}},    {"wmethod", {op_ref, 2, any}},
      {"delref", {op_delref, 1, 1}},  {"deref", {op_deref, 1, 1}},    {"eq", {op_eq, 2, 2}},
      {"alive", {op_alive, 1, 1}},    {"hascb", {op_hascb, 1, 1}},    {"count", {op_count, 1, 1}},
      {"refs", {op_refs, 1, 1}},
      // containers
      {"wkd", {op_make_container, 1, 1}}, {"wvd", {op_make_container, 1, 1}},
      {"ws", {op_make_container, 1, 1}}, {"dropc", {op_dropc, 1, 1}},
      {"copy", {op_copy, 2, 2}},      {"update", {op_update, 2, 2}},  {"eqc", {op_eqc, 2, 2}},
      {"set", {op_set, 3, 3}},        {"get", {op_get, 2, 2}},        {"at", {op_at, 2, 2}},
      {"has", {op_has, 2, 2}},        {"pop", {op_pop, 2, 2}},        {"del", {op_del, 2, 2}},
      {"setdefault", {op_setdefault, 3, 3}}, {"popitem", {op_popitem, 1, 1}},
      {"len", {op_len, 1, 1}},        {"items", {op_items, 1, 1}},    {"keys", {op_keys, 1, 1}},
      {"clear", {op_clear, 1, 1}},
      // weak sets
      {"add", {op_add, 2, 2}},        {"discard", {op_discard, 2, 2}},
      {"remove", {op_remove, 2, 2}},
      {"union", {op_set_algebra, 3, 3}}, {"inter", {op_set_algebra, 3, 3}},
      {"minus", {op_set_algebra, 3, 3}}, {"symdiff", {op_set_algebra, 3, 3}},
      {"ior", {op_set_in_place, 2, 2}}, {"iand", {op_set_in_place, 2, 2}},
      {"isub", {op_set_in_place, 2, 2}}, {"ixor", {op_set_in_place, 2, 2}},
      {"subset", {op_set_compare, 2, 2}}, {"superset", {op_set_compare, 2, 2}},
      {"disjoint", {op_set_compare, 2, 2}},
      // iterations
      {"iter", {op_iter, 2, 2}},      {"next", {op_next, 1, 1}},      {"close", {op_close, 1, 1}},
      // finalizers
      {"fin", {op_fin, 2, 3}},        {"fincall", {op_fincall, 1, 1}},
      {"findetach", {op_findetach, 1, 1}},
      {"finalive", {op_finalive, 1, 1}}, {"finatexit", {op_finatexit, 1, 2}},
      {"atexit", {op_atexit, 1, 1}},
      // only meaningful nested after `cb` (where the callback throws it itself)
      {"raise", {op_raise, 0, 0}},
  };
  // clang-format on
  return table;
}

// Runs one line; top-level lines are echoed first. Errors print `EXC <op> <Python class>`.
void run_line(const std::string& line, bool top_level) {
  command c;
  std::istringstream tokens(line);
  if (!(tokens >> c.op) || c.op[0] == '#') return;  // blank line or comment
  for (std::string t; tokens >> t;) c.args.push_back(t);
  if (top_level) emit("> " + c.op + (c.args.empty() ? "" : " " + c.rest(0)));
  auto fail = [&](const char* python_class) { emit("EXC " + c.op + " " + python_class); };
  try {
    auto it = ops().find(c.op);
    if (it == ops().end() || c.args.size() < it->second.min || c.args.size() > it->second.max)
      throw invalid_line();
    it->second.run(c);
  } catch (const weakref::reference_error&) {  // before runtime_error, its base
    fail("ReferenceError");
  } catch (const weakref::type_error&) {
    fail("TypeError");
  } catch (const std::out_of_range&) {
    fail("KeyError");
  } catch (const wrong_kind&) {
    fail("TypeError");
  } catch (const invalid_line&) {
    emit("INVALID " + c.op + (c.args.empty() ? "" : " " + c.rest(0)));
  } catch (const std::runtime_error&) {
    fail("RuntimeError");
  }
}

// Sets up the process (once): checks the handle layout, installs the unraisable hook.
void start() {
  weakref::set_unraisable_hook([](const weakref::unraisable&) { emit("unraisable"); });
}

// Runs a scenario: every line of `in`, then END-OF-SCRIPT.
void run_scenario(std::istream& in) {
  for (std::string line; std::getline(in, line);) run_line(line, true);
  emit("END-OF-SCRIPT");
}

}  // namespace

// The fuzz target includes this file without its main (and frees the state after each input).
#ifndef WEAKREF_DIFFTEST_NO_MAIN
int main() {
  start();
  run_scenario(std::cin);
  // Returning runs the library's std::atexit hook: the pending finalizers print, newest first.
  // vars() is never destroyed, so nothing else dies (and prints) after END-OF-SCRIPT.
  return 0;
}
#endif
