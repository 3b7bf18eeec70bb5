// weakref/gc.hpp — weakref::gc: a cycle collector for objects owned by std::shared_ptr, with
// CPython's rules for the weak references and finalizers on them.
// Python: the gc module (gc.collect, gc.enable, gc.disable, gc.get_objects, gc.callbacks, ...).
//
// Example:
//   struct node {
//     std::shared_ptr<node> next;           // a strong edge
//     weakref::ref<node> parent;             // a weak edge
//     template <class V> void traverse(V& visit) { visit("next", next); visit(parent); }
//   };
//   auto a = weakref::make_shared<node>();   // tracked: its type has traverse
//   auto b = weakref::make_shared<node>();
//   a->next = b;
//   b->next = a;                             // a cycle: std::shared_ptr alone leaks it
//   weakref::ref<node> r(a, [] { std::puts("a was collected"); });
//   a.reset();
//   b.reset();
//   weakref::gc::collect();                  // prints "a was collected"; returns 2
//
// Tracking: an object made by weakref::make_shared / allocate_shared is tracked when its type
// has a member `template <class V> void traverse(V&)`, or a free `traverse(T&, V&)` found by
// argument-dependent lookup. traverse visits every member that holds a std::shared_ptr to
// another object (see weakref::gc::visitor for what it accepts). It must visit only what its
// object owns, each once: visiting a shared_ptr owned elsewhere (a global, another object's
// member) makes the collector see fewer outside owners than there are, and the object that
// shared_ptr points to may be condemned while alive (its weak references then read dead and its
// traverse edges are released). An object whose count goes negative is kept, as if owned from
// outside: a concurrent move of an edge from an object already traversed to one not yet does
// that too, and is no error (but see precondition (3) below: when another owner absorbs the
// error, the count reaches 0 instead). Missing an edge only makes the collector free less.
// traverse must only visit: not change, create or release anything (the collector runs it under
// its locks; a weak_key_map of traversable values made or destroyed there stops the program
// with a message, as it would otherwise wait for its own thread forever).
// Objects of other types, and objects made by std::make_shared, are not tracked and cost
// nothing more: they are roots, so whatever they own is alive. A tracked object costs 48 bytes
// more than an untracked one, and its creation and death take a spin lock (one of 16 shards,
// chosen per thread).
//
// What collect() frees: the tracked objects that no owner outside the tracked objects keeps
// alive (CPython's algorithm: each object's use count minus the strong edges traverse shows
// from other tracked objects; what has owners left, and all it reaches, is alive). It frees
// them by releasing the strong edges their traverse shows (shared_ptrs emptied, containers
// cleared), so their destructors run as for any shared_ptr death, on the collecting thread,
// after that traverse has returned (not under a lock it takes).
// Before that, as in CPython 3.11: every weakref::ref / proxy / weak_method / container entry
// of the garbage reads dead, then the callbacks run of those weak references that are not
// garbage themselves (a ref held only by garbage never calls back), finalizers included.
// An object alive from outside, and everything it reaches, is never touched. A lock racing the
// decision on another thread answers nothing for the garbage, and the reference it took for a
// moment goes to the collector: no destructor runs inside a lock (as none runs inside
// std::weak_ptr::lock). A lock preempted between taking that reference and handing it over,
// until the collection has ended, leaves its object to the next collection.
//
// Lifetime and thread-safety: collect() may be called on any thread while other threads run;
// one analysis runs at a time, while callbacks and destructors run outside any collector
// lock (another thread's collect() may then proceed). A collect() called from a callback,
// destructor or traverse that a collection runs on the same thread returns 0 at once (as
// CPython's gc.collect() inside a collection). Other threads are not paused: a thread that
// allocates or frees a tracked object waits at most for one collection's pass over its
// shard of the tracked list. What a collection guarantees to other threads:
//  - It never frees or changes an object that a strong reference keeps alive from outside the
//    tracked graph, provided (1) traverse and concurrent writers of the members it visits are
//    synchronized (traverse reads the members: guard them as for any read from another thread), (2)
//    no thread holds a cycle only "hand over hand", taking one member's strong reference from the
//    previous one's field and letting that one go, in step with the collection (the counts of such
//    a walk can look constant; see docs/design.md; each step taken in an edit_scope meets it too),
//    and (3) no thread MOVES a strong edge between two tracked objects while a collection may be
//    analysing, unless it holds a weakref::gc::edit_scope (below): a shared_ptr moved from one
//    tracked object's member into another's (directly or through a local), two swapped, or one
//    copied and the original then reset: any change that leaves every use count as it was. The
//    analysis calls each traverse once; a move between the two objects' traverses shows it the edge
//    twice, and if the target has another owner to absorb the error (its count then reaches 0
//    instead of going negative), that live object is condemned: its weak references read dead and
//    the edges its traverse shows are released. The re-check of the counts cannot see a move. Not
//    affected: storing into a member a reference held outside the tracked objects (a local, a
//    global) or taking one out to keep, dropping an edge, copies that raise a count, and anything
//    done while holding a scope.
//    Since traverse runs under the collector's lock, a thread must not call collect() while it
//    holds a lock that some traverse takes; and since it runs under the lock of the list of
//    weak_key_maps with traversable values, which their construction and destruction take,
//    such a map must not be made or destroyed while holding a lock that some traverse takes.
//  - weakref::ref / proxy / weak_method / weak container lookups on another thread during a
//    collection either get a live object that the collection then leaves alone, or nothing
//    (the object was condemned). A lock that meets an object being re-checked waits for the
//    verdict (microseconds). Such a lock never says "dead" about an object that then lives.
//  - std::weak_ptr cannot be intercepted: a std::weak_ptr::lock() during a collection may
//    return an object the collection has condemned. The holder then has a garbage object:
//    its weakref refs already read dead, the strong edges its traverse shows are released
//    while it is held, and it is destroyed (on the holder's thread) when the holder lets go;
//    the collection counts it as uncollectable. A collection that sees such a lock before it
//    decides keeps the whole candidate set instead (collection_info::reprieved).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "weakref/detail/gc_collector.hpp"
#include "weakref/detail/gc_inspect.hpp"
#include "weakref/detail/gc_registry.hpp"
#include "weakref/detail/gc_visitor.hpp"
#include "weakref/make_shared.hpp"

namespace weakref::gc {

// weakref::gc::collect()
//
// A full collection (see the top of this header). Returns how many garbage objects it freed
// (their last owner was released by it, on this thread). 0 when called on a thread that is
// already inside a collection.
// Throws: an exception a traverse throws while the garbage is being found; std::bad_alloc.
// (More strong references reported to an object than it has owners is not an error: another
// thread may have moved an edge between two traverses. That object is kept. A move that leaves
// the count at 0 is not seen: precondition (3) at the top, and edit_scope.) In each case the
// collection is abandoned before anything is condemned: nothing was freed or changed, the
// phase::start callbacks ran but phase::stop ones do not, and get_stats() does not count it.
// Once the garbage is condemned nothing can fail: everything freeing needs is allocated before,
// and exceptions from traverses, callbacks and destructors go to the unraisable hook.
// A garbage object that survives its collection (uncollectable) stays condemned: it is off the
// tracked lists, invisible to get_objects() and later collections, and dies when its last
// owner lets go.
inline std::size_t collect() { return detail::gc_collector::collect(true); }

// weakref::gc::edit_scope
//
// Held by a thread while it moves strong edges between tracked objects: precondition (3) at
// the top of this header. While any thread holds one, no collection analyses: collect() waits
// for every scope to end before it reads the first count, and a scope opened while an
// analysis runs waits for its verdict (O(tracked objects); callbacks and destructors after the
// verdict are not waited for). Uncontended, it costs one atomic increment and one decrement
// of a shared word, as a std::shared_mutex's lock_shared / unlock_shared.
//
//   {
//     weakref::gc::edit_scope scope;    // before the locks traverse takes
//     std::scoped_lock lock(a->mutex, b->mutex);
//     b->children.push_back(std::move(a->children.back()));
//     a->children.pop_back();
//   }
//
// Scopes nest on a thread (the inner ones cost nothing). On a thread that holds one,
// collect() returns 0 at once and collects nothing, as a nested collect() does: so does the
// automatic collection of a weakref::make_shared inside the scope, and a collect() from a
// callback or destructor run there (a move that drops an object's last owner runs them inside
// the scope). The introspection queries below throw std::logic_error on such a thread (they
// may wait for collections that wait for its scope). A collection's weak reference callbacks,
// gc callbacks and destructors may open scopes (its analysis is over by then). Do not wait,
// while holding a scope, for a thread that may be collecting, or that is waiting to open a
// scope: that thread may be waiting for yours (it is a shared lock, taken before any lock
// traverse takes).
// Throws: std::logic_error when made inside a traverse that a collection's analysis or a query
// runs (it would wait for that analysis; the collection is abandoned, nothing freed).
// Destroy it on the thread that made it.
class edit_scope {
 public:
  [[nodiscard]] edit_scope() {
    if (detail::gc_edits_here++ != 0) return;  // nested
    if (detail::gc_locked_here != 0) {
      --detail::gc_edits_here;
      throw std::logic_error("weakref::gc::edit_scope inside a traverse the collector runs");
    }
    detail::gc_collector::globals().edit_gate.enter();
  }
  ~edit_scope() {
    if (--detail::gc_edits_here == 0) detail::gc_collector::globals().edit_gate.leave();
  }
  edit_scope(const edit_scope&) = delete;
  edit_scope& operator=(const edit_scope&) = delete;
};

// weakref::gc::is_tracked(obj)
//
// Whether the cycle collector tracks `obj`'s object (made by weakref::make_shared with a
// type that has traverse). False for empty and non-weakrefable pointers.
template <class T>
bool is_tracked(const std::shared_ptr<T>& obj) noexcept {
  auto* header = std::get_deleter<detail::object_header>(obj);
  return header && header->tracked();
}

// weakref::gc::enable(), disable(), isenabled()
//
// Automatic collection: when enabled, a tracked allocation that brings the count of tracked
// allocations since the last collection to the threshold runs collect() on the allocating
// thread, inside weakref::make_shared (an exception it throws goes to the unraisable hook).
// NOTE: off by default, unlike CPython: a collection runs destructors and callbacks, and in
// C++ an arbitrary make_shared call is rarely a safe place for them. Enable it where it is.
inline void enable() noexcept {
  detail::gc_registry::instance().enabled.store(true, std::memory_order_relaxed);
}
inline void disable() noexcept {
  detail::gc_registry::instance().enabled.store(false, std::memory_order_relaxed);
}
inline bool isenabled() noexcept {
  return detail::gc_registry::instance().enabled.load(std::memory_order_relaxed);
}

// weakref::gc::set_threshold(n), get_threshold()
//
// The number of tracked allocations after which an automatic collection runs (CPython's
// threshold0, default 700). 0 turns automatic collection off, as in CPython.
inline void set_threshold(std::size_t allocations) noexcept {
  detail::gc_registry::instance().threshold.store(allocations, std::memory_order_relaxed);
}
inline std::size_t get_threshold() noexcept {
  return detail::gc_registry::instance().threshold.load(std::memory_order_relaxed);
}

// weakref::gc::get_count()
//
// Tracked allocations since the last collection (CPython's count of generation 0).
inline std::size_t get_count() noexcept { return detail::gc_registry::instance().allocations(); }

// weakref::gc::get_objects()
//
// A strong reference to every tracked object alive now (not those a collection condemned).
// O(tracked objects); the references keep them alive while you hold the vector.
inline std::vector<std::shared_ptr<const void>> get_objects() {
  return detail::gc_collector::objects();
}

// weakref::gc::get_stats()
//
// Collections run so far, and the objects they freed and could not free.
inline stats get_stats() {
  auto& g = detail::gc_collector::globals();
  std::lock_guard lock(g.stats_mutex);
  return g.totals;
}

// weakref::gc::callback, add_callback(cb), remove_callback(id)
//
// CPython's gc.callbacks: cb(phase::start, info) before each collection and
// cb(phase::stop, info) after it, on the collecting thread, outside the collector's locks.
// An exception a callback throws goes to the unraisable hook. add_callback returns an id for
// remove_callback, which returns whether it removed one.
using callback = detail::gc_collector::callback;

inline std::size_t add_callback(callback cb) {
  auto& g = detail::gc_collector::globals();
  std::lock_guard lock(g.stats_mutex);
  g.callbacks.emplace_back(g.next_callback_id, std::move(cb));
  return g.next_callback_id++;
}

inline bool remove_callback(std::size_t id) {
  callback removed;  // destroyed after the lock is let go
  auto& g = detail::gc_collector::globals();
  std::lock_guard lock(g.stats_mutex);
  for (auto it = g.callbacks.begin(); it != g.callbacks.end(); ++it) {
    if (it->first == id) {
      removed = std::move(it->second);
      g.callbacks.erase(it);
      return true;
    }
  }
  return false;
}

// Introspection: "why is this still alive?"
//
// Each query below except get_referents runs the collector's analysis without condemning
// anything: it is O(tracked objects + their edges) (every traverse runs once or twice), holds
// the collector's lock meanwhile (a collect() on another thread waits). Weak reference
// callbacks, gc callbacks and destructors that a collection runs may call them (as in
// CPython); a traverse may not, nor a destructor run while the collector holds its lock or lets
// go of its snapshot (an object that died as the collector let go of it), nor a thread that
// holds an edit_scope: those throw std::logic_error instead of deadlocking. Nor may such a
// destructor (or one that get_referrers' walk runs, when it lets go of an object whose other
// owners left meanwhile) wait for another thread that runs a query: that query waits for the
// release, a deadlock. Queries do not wait for other threads' edit scopes (they condemn
// nothing): one that runs while another thread moves an edge may misreport. A collect() from a
// traverse a query runs returns 0. get_referrers walks (on other threads) pause between chunks
// of objects while a query waits, so queries are not starved by overlapping walks.
// The results hold strong references: they keep what they name alive while you hold them.

// weakref::gc::get_referents(obj)
//
// The objects obj holds strong references to, as its traverse shows them (Python's
// gc.get_referents): each std::shared_ptr it visits, in visit order, tracked or not, the
// values of the weak containers it visits included. Empty for a type without traverse (an
// untracked object of a type with traverse is visited all the same). O(obj's edges). Takes no
// lock; a weak_key_map key is held while its value is read and let go of after the traverse.
template <class T>
std::vector<std::shared_ptr<const void>> get_referents(const std::shared_ptr<T>& obj) {
  std::vector<std::shared_ptr<const void>> result;
  if (!obj) return result;
  auto collect = [&](const detail::gc_edge_ref& edge, detail::object_header*, std::string_view) {
    result.push_back(edge.copy());
  };
  auto* header = std::get_deleter<detail::object_header>(obj);
  detail::gc_inspector::referents(
      [&](gc::visitor& visit) {
        if (header && header->tracked()) {
          auto& record = detail::gc_record_of(*header);
          record.type->traverse(record.object(), visit);
        } else if constexpr (detail::is_traversable<std::remove_cv_t<T>>) {
          visit(const_cast<std::remove_cv_t<T>&>(*obj));
        }
      },
      collect);
  return result;
}

// weakref::gc::get_referrers(obj)
//
// The tracked objects whose traverse shows a strong reference to obj (Python's
// gc.get_referrers), each once, obj included if it refers to itself. A weak_key_map that no
// tracked object owns is not an object: a value of it that refers to obj is not listed
// (why_alive and to_dot show it). O(tracked objects).
template <class T>
std::vector<std::shared_ptr<const void>> get_referrers(const std::shared_ptr<T>& obj) {
  if (!obj) return {};
  return detail::gc_inspector::referrers(obj);
}

// weakref::gc::explain_alive(obj), why_alive(obj)
//
// The shortest chain of strong references [root, ..., obj] from a root (an object with owners
// outside the tracked objects, or one held by a value of a weak_key_map no tracked object
// owns) to obj, breadth first over the edges traverse shows. obj's own argument is not an
// owner here (one owner is discounted, as objgraph ignores its query's reference): the
// chain is [obj] when obj has other owners outside the tracked objects, and empty when nothing
// but cycles keeps it (the next collect() would free it). An edge from a weak_key_map's value
// continues the chain from that entry's key. explain_alive names each link's type and the
// member path of each edge (retention::str() prints it); why_alive gives the objects alone.
// An untracked obj is found through the tracked objects that hold it. O(tracked objects).
template <class T>
retention explain_alive(const std::shared_ptr<T>& obj) {
  if (!obj) return {};
  return detail::gc_inspector::explain(obj, detail::query_argument_owners<T>,
                                       detail::dynamic_type(obj));
}

template <class T>
std::vector<std::shared_ptr<const void>> why_alive(const std::shared_ptr<T>& obj) {
  std::vector<std::shared_ptr<const void>> chain;
  for (auto& link : explain_alive(obj).links) chain.push_back(std::move(link.object));
  return chain;
}

// weakref::gc::to_dot(obj, max_nodes = 64)
//
// A Graphviz digraph of what keeps obj alive: obj and the tracked objects that hold it,
// directly or not (nearest first, at most max_nodes), with every strong edge among them
// labelled by its member path, roots drawn double with their count of outside owners, the
// why_alive chain drawn bold, and edges from weak_key_map values dashed. Cycles show as cycles.
// Render it with `dot -Tsvg`. O(tracked objects + edges).
template <class T>
std::string to_dot(const std::shared_ptr<T>& obj, std::size_t max_nodes = 64) {
  if (!obj) return "digraph retention {\n}\n";
  return detail::gc_inspector::to_dot(obj, detail::query_argument_owners<T>,
                                      detail::dynamic_type(obj), max_nodes);
}

// weakref::gc::find_garbage()
//
// The leak finder: what collect() would free now, without freeing it (Python's
// gc.DEBUG_SAVEALL, then reading gc.garbage): the garbage objects with their types, the strong
// edges between them with their member paths, grouped into the cycles (and what hangs off
// them) that hold together. report.str() prints it, report.to_dot() draws it. The report holds
// the objects: let it go before collect() can free them. O(tracked objects).
inline garbage_report find_garbage() { return detail::gc_inspector::find_garbage(); }

}  // namespace weakref::gc
