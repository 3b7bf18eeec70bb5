// weakref/detail/gc_collector.hpp — one collection: CPython's algorithm (use counts minus
// internal edges, then reachability from what is left) over a snapshot of the tracked objects,
// with a condemn-and-recheck step that makes it safe while other threads run.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "weakref/detail/gc_ephemeron.hpp"
#include "weakref/detail/gc_registry.hpp"
#include "weakref/detail/gc_visitor.hpp"
#include "weakref/detail/object_header.hpp"
#include "weakref/unraisable.hpp"

namespace weakref::gc {

// What one collection did (gc callbacks receive it; CPython's `info` dict).
struct collection_info {
  std::size_t collected = 0;      // garbage objects this collection freed
  std::size_t uncollectable = 0;  // garbage objects still held when it let go (see gc.hpp)
  std::size_t examined = 0;       // tracked objects in its snapshot
  bool reprieved = false;         // candidates gained an owner while being re-checked: kept
  std::chrono::nanoseconds duration{0};
};

// Totals since the program started (CPython: gc.get_stats(), one generation).
struct stats {
  std::size_t collections = 0;
  std::size_t collected = 0;
  std::size_t uncollectable = 0;
};

enum class phase { start, stop };

}  // namespace weakref::gc

namespace weakref::detail {

// Set while this thread runs collect(): a nested call returns 0, as in CPython.
WEAKREF_PROCESS_WIDE inline thread_local bool gc_collecting_here = false;
// Set while this thread holds a collector lock, or lets go of a snapshot's holds: an
// introspection query from a traverse or destructor run then would deadlock, and throws.
WEAKREF_PROCESS_WIDE inline thread_local int gc_busy_here = 0;
struct gc_busy_scope {
  gc_busy_scope() noexcept { ++gc_busy_here; }
  ~gc_busy_scope() { --gc_busy_here; }
  gc_busy_scope(const gc_busy_scope&) = delete;
  gc_busy_scope& operator=(const gc_busy_scope&) = delete;
};

// gc::edit_scopes this thread holds (nested ones included): while any, collect() returns 0
// (waiting for the other threads' scopes would wait for its own).
WEAKREF_PROCESS_WIDE inline thread_local unsigned gc_edits_here = 0;
// Set while this thread keeps the edit gate closed or holds a lock a closed gate's analysis
// waits for (the collector's mutex, the ephemeron registry's): an edit scope opened then, from
// a traverse, would wait for this thread. It throws instead.
WEAKREF_PROCESS_WIDE inline thread_local int gc_locked_here = 0;
struct gc_locked_scope {
  gc_locked_scope() noexcept { ++gc_locked_here; }
  ~gc_locked_scope() { end(); }
  gc_locked_scope(const gc_locked_scope&) = delete;
  gc_locked_scope& operator=(const gc_locked_scope&) = delete;
  void end() noexcept {
    if (active) --gc_locked_here;
    active = false;
  }
  bool active = true;
};

// What gc::edit_scope and an analysis exclude each other with: a count of threads holding a
// scope and a "closed" bit, in one word, so that both sides order themselves by read-modify-
// writes of it (no fences; ThreadSanitizer models it). An uncontended scope is one fetch_add
// and one fetch_sub. A closed gate keeps new scopes out (a steady stream of short scopes cannot
// starve collections); scopes that met it wait for it to open. One closer at a time (mutex_).
class gc_edit_gate {
 public:
  void enter() noexcept {
    for (;;) {
      auto s = state_.fetch_add(1, std::memory_order_acquire);
      if ((s & closed) == 0) return;
      leave();  // back out: the closer may be waiting for exactly this count
      for (s = state_.load(std::memory_order_acquire); s & closed;
           s = state_.load(std::memory_order_acquire)) {
        state_.wait(s, std::memory_order_relaxed);
      }
    }
  }
  void leave() noexcept {
    // Release: what the scope wrote happens before the analysis that waited for it.
    if (state_.fetch_sub(1, std::memory_order_release) == (closed | 1)) state_.notify_all();
  }
  // Waits for every scope to end, keeping new ones out until open().
  void close() {
    mutex_.lock();
    auto s = state_.fetch_or(closed, std::memory_order_acquire) | closed;
    while (s != closed) {
      state_.wait(s, std::memory_order_relaxed);
      s = state_.load(std::memory_order_acquire);
    }
  }
  void open() noexcept {
    state_.fetch_and(~closed, std::memory_order_release);
    state_.notify_all();
    mutex_.unlock();
  }
  // Whether a collection is closing or keeps the gate closed (automatic collections give way).
  bool busy() noexcept {
    if (!mutex_.try_lock()) return true;
    mutex_.unlock();
    return false;
  }

 private:
  static constexpr std::uint32_t closed = std::uint32_t{1} << 31;
  std::atomic<std::uint32_t> state_{0};
  std::mutex mutex_;
};

class gc_collector {
 public:
  using callback = std::function<void(gc::phase, const gc::collection_info&)>;

  // One tracked object in a collection's snapshot (32 bytes). `hold` keeps it from dying under
  // the analysis (and is subtracted from its count); a garbage object's, until it is freed.
  struct entry {
    static constexpr std::int32_t reached = -1;
    static constexpr std::int32_t condemned = -2;  // garbage: its hold frees it
    gc_record* record;
    std::shared_ptr<const void> hold;
    std::int32_t count = 0;    // use_count when the snapshot took it
    std::int32_t outside = 0;  // count minus the edges from the snapshot, then `reached`
  };

  struct state {
    std::mutex collect_mutex;  // one analysis at a time; never held while user code frees
    // Kept between collections (under collect_mutex): a new snapshot of a million objects
    // would otherwise page-fault its way into fresh memory each time.
    std::vector<entry> snapshot_buffer;  // (a collection gives it back once its garbage is freed)
    std::vector<std::uint32_t> edges_buffer;  // the same, for the edges' list
    std::mutex stats_mutex;
    gc::stats totals;
    std::vector<std::pair<std::size_t, callback>> callbacks;  // under stats_mutex
    std::size_t next_callback_id = 1;
    // Analyses letting go of their snapshot's holds (after their lock), and get_referrers walks
    // (for_each_held): a query waits for them, or it would count their holds as outside owners.
    std::atomic<int> releasing{0};
    // Queries waiting for `releasing`: walks park between two chunks meanwhile (so that
    // overlapping walks cannot keep a query waiting for ever), each listed in `parked` with
    // the one hold it keeps, which queries discount (under collect_mutex).
    std::atomic<int> queries_waiting{0};
    struct parked_walk {
      const gc_record* resume;  // held, or null
      parked_walk* next;
    };
    parked_walk* parked = nullptr;
    // Closed by each analysis, from before its first count read to its verdict (gc::edit_scope).
    gc_edit_gate edit_gate;
  };

  // Never destroyed, as the registry; built in static storage, so the first use cannot fail.
  WEAKREF_PROCESS_WIDE static state& globals() noexcept {
    alignas(state) static unsigned char storage[sizeof(state)];
    static state* s = new (storage) state();
    return *s;
  }

  // A full collection on this thread. `wait`: false for an automatic one, which gives way
  // to a collection already under way.
  static std::size_t collect(bool wait) {
    if (gc_collecting_here || gc_edits_here != 0) return 0;
    if (!wait) {  // an automatic collection gives way to one under way
      if (globals().edit_gate.busy()) return 0;
      if (!globals().collect_mutex.try_lock()) return 0;
      globals().collect_mutex.unlock();
    }
    gc_collecting_here = true;
    struct reset_flag {
      ~reset_flag() { gc_collecting_here = false; }
    } reset;
    auto started = std::chrono::steady_clock::now();
    gc::collection_info info;
    notify(gc::phase::start, info);
    gc_collector run;
    run.analyse();
    info.examined = run.examined_;
    info.reprieved = run.reprieved_;
    run.free_garbage(info);
    info.duration = std::chrono::steady_clock::now() - started;
    {
      std::lock_guard lock(globals().stats_mutex);
      auto& totals = globals().totals;
      ++totals.collections;
      totals.collected += info.collected;
      totals.uncollectable += info.uncollectable;
    }
    notify(gc::phase::stop, info);
    return info.collected;
  }

  // An analysis that condemns nothing, for the introspection queries: f(run) is called with the
  // snapshot taken and, if `subtract`, the internal edges subtracted (each entry's `outside` is
  // its count of outside owners), under the locks a collection's analysis holds. A collect() from
  // inside (a traverse) returns 0. The snapshot's holds are let go after the locks, as collect()
  // does. Callable from a callback or destructor a collection on this thread runs, except while
  // that collection holds its locks or lets go of its snapshot (gc_busy_here).
  template <class F>
  static auto query(F&& f, bool subtract = true) {
    check_query_allowed();
    gc_busy_scope busy;
    gc_collector run;
    std::unique_lock lock(globals().collect_mutex);
    // Waits for analyses (and get_referrers) letting go of their holds, without the lock:
    // get_referrers takes each chunk of its holds under it, and parks meanwhile. A destructor
    // run by such a release that waited for this thread would deadlock here (gc.hpp).
    if (globals().releasing.load(std::memory_order_acquire) != 0) {
      struct waiting {  // until the snapshot is taken: this thread keeps the lock from then
        waiting() noexcept { globals().queries_waiting.fetch_add(1, std::memory_order_relaxed); }
        ~waiting() { globals().queries_waiting.fetch_sub(1, std::memory_order_relaxed); }
        waiting(const waiting&) = delete;
        waiting& operator=(const waiting&) = delete;
      } wait;
      wait_unlocked(lock, [] { return globals().releasing.load(std::memory_order_acquire) != 0; });
    }
    gc_locked_scope locked;
    // A collect() from a traverse returns 0; a collection this thread runs stays flagged.
    struct finish {
      gc_collector& run;
      std::unique_lock<std::mutex>& lock;
      gc_locked_scope& locked;
      bool outer = std::exchange(gc_collecting_here, true);
      ~finish() {
        gc_collecting_here = outer;
        locked.end();
        run.release_snapshot(lock);
      }
    } done{run, lock, locked};
    run.take_buffers();
    run.take_snapshot();
    run.discount_parked_walks();
    gc_maps_walk maps;
    if (subtract) run.subtract_internal_edges();
    return f(run);
  }

  // For a query that only reads each object (get_referrers): f(record, hold) for every tracked
  // object alive and not condemned, each held while f runs; f may take the hold (move from it),
  // the others are let go right after their f. Each shard is walked in chunks: a chunk's objects
  // are held under the collector's lock (no analysis is deciding a verdict meanwhile, so none is
  // pending) and the shard's, then visited and let go outside both, while their lines are still
  // in cache (a whole snapshot first would miss on every object twice). The chunk's last object
  // stays held until the walk has resumed after it: held, it stays on the list. Allowed
  // where query() is, with the same rules for what f runs (a collect() from a traverse returns
  // 0; a query from one, or from a destructor a release runs, throws).
  template <class F>
  static void for_each_held(F&& f) {
    check_query_allowed();
    gc_busy_scope busy;
    {
      // Under the lock a query takes its snapshot under: a query either took it before these
      // holds exist, or waits (unlocked) for them to go.
      std::lock_guard lock(globals().collect_mutex);
      globals().releasing.fetch_add(1, std::memory_order_relaxed);
    }
    struct finish {
      bool outer = std::exchange(gc_collecting_here, true);
      ~finish() {
        gc_collecting_here = outer;
        globals().releasing.fetch_sub(1, std::memory_order_release);
      }
    } done;
    // Small enough that a chunk's objects, read when it is taken, are still in the L1 cache
    // when they are traversed and let go (10^6 objects: 256 per chunk 14-18 ns per object, 32
    // per chunk 10-12).
    constexpr std::size_t chunk = 32;
    std::vector<std::pair<const gc_record*, std::shared_ptr<const void>>> held;
    held.reserve(chunk);  // (destroyed before `done`: if f throws, the holds go first)
    for (auto& shard : gc_registry::instance().shards) {
      const gc_record* resume = nullptr;
      std::shared_ptr<const void> resume_hold;  // keeps `resume` on the list
      for (;;) {
        {
          std::unique_lock analysis(globals().collect_mutex);
          park_for_queries(analysis, resume);
          std::lock_guard lock(shard.lock);
          for (auto* r = resume ? resume->next : shard.head; r && held.size() < chunk;
               r = r->next) {
            if (auto hold = r->hold()) held.emplace_back(r, std::move(hold));
          }
        }
        resume_hold.reset();  // outside the lock: it may be the last owner, and a death takes it
        if (held.empty()) break;
        resume = held.back().first;
        resume_hold = held.back().second;
        for (auto& [record, hold] : held) {
          f(*record, hold);
          hold.reset();
        }
        held.clear();
      }
    }
  }

  // Every tracked object alive and not condemned. Each is held under its shard's lock, then
  // admitted as a weak reference's lock admits its object (after the lock: a verdict pending
  // for it is decided under the shard's lock): a collection deciding meanwhile either sees the
  // hold when it counts again, or has condemned the object, which is left out.
  static std::vector<std::shared_ptr<const void>> objects() {
    std::vector<std::shared_ptr<const void>> result;
    for (auto& shard : gc_registry::instance().shards) {
      shard.lock_with_room(result);
      std::lock_guard lock(shard.lock, std::adopt_lock);
      for (auto* r = shard.head; r; r = r->next) {
        if (auto object = r->hold()) result.push_back(std::move(object));
      }
    }
#if WEAKREF_GC_NO_FENCES
    constexpr bool fence_each = true;
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);  // after every hold, as gc_admits' own
    constexpr bool fence_each = false;
#endif
    auto& late_owners = gc_registry::instance().late_owners;
    late_owners.enter();  // as a lock that found its object condemned
    std::size_t kept = 0;
    for (auto& object : result) {
      if (!gc_admits(*std::get_deleter<object_header>(object), fence_each)) {
        late_owners.hand_over(object);  // the collector lets go of its last owner
      } else {
        if (&object != &result[kept]) result[kept] = std::move(object);
        ++kept;
      }
    }
    late_owners.leave();
    result.erase(result.begin() + static_cast<std::ptrdiff_t>(kept), result.end());  // all empty
    return result;
  }

 private:
  friend class gc_inspector;

  // Yields with the collector's lock let go while `waiting()`, which is read under the lock.
  template <class Waiting>
  static void wait_unlocked(std::unique_lock<std::mutex>& lock, Waiting waiting) {
    while (waiting()) {
      lock.unlock();
      std::this_thread::yield();
      lock.lock();
    }
  }

  // Between two chunks of a walk, which holds nothing but `resume` (if not null): while a query
  // waits for `releasing`, stops counting in it and waits too, listed in `parked`.
  static void park_for_queries(std::unique_lock<std::mutex>& lock,
                               const gc_record* resume) noexcept {
    auto& g = globals();
    if (g.queries_waiting.load(std::memory_order_relaxed) == 0) return;
    state::parked_walk me{resume, g.parked};
    g.parked = &me;
    g.releasing.fetch_sub(1, std::memory_order_release);
    wait_unlocked(lock, [&] { return g.queries_waiting.load(std::memory_order_relaxed) != 0; });
    g.releasing.fetch_add(1, std::memory_order_relaxed);
    auto** link = &g.parked;
    while (*link != &me) link = &(*link)->next;
    *link = me.next;
  }

  // A parked walk's hold on its resume point is no owner: the query's snapshot discounts it.
  void discount_parked_walks() noexcept {
    for (auto* walk = globals().parked; walk; walk = walk->next) {
      if (auto* e = walk->resume ? entry_of(*walk->resume) : nullptr) {
        --e->count;
        --e->outside;
      }
    }
  }

  static void check_query_allowed() {
    if (gc_busy_here != 0) {
      throw std::logic_error(
          "weakref::gc: introspection from a traverse, or from a destructor run while the "
          "collector holds its lock or lets go of its snapshot");
    }
    // It would wait for analyses letting go of their snapshots, whose destructors may wait
    // for a collection that waits for this thread's scope.
    if (gc_edits_here != 0) {
      throw std::logic_error("weakref::gc: introspection while this thread holds an edit_scope");
    }
  }

  // Counts each strong edge to a snapshot object against that object's count.
  // Also notes which objects hold weak references (the census after the verdict visits only
  // those).
  // The ephemerons' values count as internal edges too (current is then no_slot): they keep
  // things alive only through marking, once their key and their map are reached.
  // Records each object's edges within the analysis (edges_), for marking.
  struct subtract_edges final : gc_edge_sink {
    gc_collector* run;
    std::uint32_t current = 0;
    void strong(object_header& target, std::string_view) override {
      if (auto* e = run->entry_of(target)) {
        --e->outside;
        if (current != no_slot) run->edges_.push_back(run->slot_of(*e));
      }
      if (current == no_slot) ++run->ephemeron_edges_;
    }
    void weak(weakref_node&) override {
      ++run->weak_visits_;
      if (current == no_slot) return;
      auto& holders = run->weak_holders_;
      if (holders.empty() || holders.back() != current) holders.push_back(current);
    }
    void table(gc_ephemeron_table& map, gc::visitor&) override {
      auto* t = run->table_of(map);
      if (!t) return;
      t->owned = true;
      if (current != no_slot) {
        run->edges_.push_back(table_edge | static_cast<std::uint32_t>(t - run->tables_.data()));
      }
    }
  };
  // Marks what a reached object (or a reached ephemeron's value) reaches, from `from`.
  struct mark_reached final : gc_edge_sink {
    gc_collector* run;
    std::uint32_t from = no_slot;
    std::uint32_t via = no_slot;  // the ephemeron whose value is being visited, if any
    void strong(object_header& target, std::string_view) override {
      if (auto* e = run->entry_of(target)) run->reach(*e, from, via);
    }
    void table(gc_ephemeron_table& map, gc::visitor&) override {
      if (auto* t = run->table_of(map)) run->table_reached(*t, from);
    }
  };
  // Counts the handles of weak references that garbage objects hold.
  // Lists the weak reference handles garbage holds, into room reserved before the verdict (a
  // traverse reporting more than it did then is not believed: those count as outside).
  struct count_weak_handles final : gc_edge_sink {
    std::vector<weakref_node*>* inside;
    void strong(object_header&, std::string_view) override {}
    void weak(weakref_node& node) override {
      if (inside->size() < inside->capacity()) inside->push_back(&node);
    }
  };

  static constexpr std::uint32_t no_slot = static_cast<std::uint32_t>(-1);
  static constexpr std::uint32_t dead_key = no_slot - 1;
  // In edges_: an edge to the weak_key_map tables_[edge & ~table_edge], not to a slot.
  static constexpr std::uint32_t table_edge = std::uint32_t{1} << 31;

  static void traverse(const gc_record& record, gc::visitor& visit) {
    record.type->traverse(record.object(), visit);
  }
  entry* entry_of(object_header& header) noexcept {
    if (snapshot_.empty()) return nullptr;  // (record_to_header_ may not be known then)
    return entry_of(
        *reinterpret_cast<gc_record*>(reinterpret_cast<std::byte*>(&header) - record_to_header_));
  }
  entry* entry_of(const gc_record& record) noexcept {
    auto slot = record.slot;
    return slot < snapshot_.size() && snapshot_[slot].record == &record ? &snapshot_[slot]
                                                                        : nullptr;
  }
  std::uint32_t slot_of(const entry& e) const noexcept {
    return static_cast<std::uint32_t>(&e - snapshot_.data());
  }

  // A weak_key_map of ephemerons, as one analysis sees it (under the registry's lock).
  struct table_state {
    gc_ephemeron_table* map;
    std::uint32_t first = 0, last = 0;  // its ephemerons: ephemerons_[first, last)
    std::size_t value_edges = 0;        // shared_ptrs in its values, tracked or not
    bool owned = false;                 // a traverse (or another map's value) holds it
    bool alive = false;                 // reached: a root, or its holder was reached
  };
  struct ephemeron {
    std::uint32_t table;
    // Its key's snapshot slot; no_slot: a key this analysis does not examine (alive, untracked
    // or already condemned), always reached; dead_key: the key died, and the map has not yet
    // dropped the entry: never reached (its value is garbage, released with the garbage).
    std::uint32_t key;
    std::size_t position;
    bool fired = false;            // its value was marked ...
    std::uint32_t from = no_slot;  // ... once this slot was (its key, or its map's holder)
  };
  table_state* table_of(gc_ephemeron_table& map) noexcept {
    auto i = map.gc_scratch_index;
    return i < tables_.size() && tables_[i].map == &map ? &tables_[i] : nullptr;
  }

  static void notify(gc::phase phase, const gc::collection_info& info) noexcept {
    std::vector<callback> callbacks;
    try {
      std::lock_guard lock(globals().stats_mutex);
      for (auto& [id, cb] : globals().callbacks) callbacks.push_back(cb);
    } catch (...) {
      report_unraisable(std::current_exception(), "weakref::gc callback");
      return;
    }
    for (auto& cb : callbacks) {
      try {
        cb(phase, info);
      } catch (...) {
        report_unraisable(std::current_exception(), "weakref::gc callback");
      }
    }
  }

  // Finds the garbage: on return, it is condemned (weak references read dead), and its entries
  // in snapshot_ (outside == condemned) are all snapshot_ still holds.
  // The edit gate is closed from before the first count is read to the verdict (gc::edit_scope:
  // a move between two traverses would count its edge twice), and open before the snapshot's
  // holds go (their destructors may open scopes).
  void analyse() {
    // A scope made by a phase::start callback and kept (on the heap) would wait for itself.
    if (gc_edits_here != 0) return;
    gc_busy_scope busy;
    gc_locked_scope locked;
    struct closed_gate {
      gc_edit_gate& gate;
      bool closed = true;
      explicit closed_gate(gc_edit_gate& g) : gate(g) { g.close(); }
      ~closed_gate() { open(); }
      void open() noexcept {
        if (closed) gate.open();
        closed = false;
      }
    } gate(globals().edit_gate);
    std::unique_lock lock(globals().collect_mutex);
    auto finish = [&] {
      gate.open();
      locked.end();
      release_snapshot(lock);
    };
    gc_registry::instance().reset_allocations();
    take_buffers();
    try {
      take_snapshot();
      examined_ = snapshot_.size();
      gc_maps_walk maps;
      subtract_internal_edges();
      mark_from_roots(no_slot);
      condemn_unreached();  // throws only before it condemns anything
    } catch (...) {
      finish();  // nothing was condemned or changed
      throw;
    }
    finish();
  }

  // Lets go of the live objects' holds outside the lock (some may have lost every other owner
  // meanwhile, and then die here); the garbage's stay for free_garbage.
  void release_snapshot(std::unique_lock<std::mutex>& lock) {
    globals().releasing.fetch_add(1, std::memory_order_relaxed);  // before a query can look
    lock.unlock();
    for (auto& e : snapshot_) {
      if (e.outside != entry::condemned) e.hold.reset();
    }
    globals().releasing.fetch_sub(1, std::memory_order_release);
  }

 public:
  // Gives the buffers back for the next analysis (a new snapshot of a million objects would
  // page-fault its way into fresh memory), after letting go of any hold left in them.
  ~gc_collector() {
    snapshot_.clear();
    edges_.clear();
    std::lock_guard relock(globals().collect_mutex);
    if (globals().snapshot_buffer.capacity() < snapshot_.capacity()) {
      snapshot_.swap(globals().snapshot_buffer);
    }
    if (globals().edges_buffer.capacity() < edges_.capacity()) edges_.swap(globals().edges_buffer);
  }
  gc_collector() = default;
  gc_collector(const gc_collector&) = delete;
  gc_collector& operator=(const gc_collector&) = delete;

 private:
  // The buffers the last analysis left (under collect_mutex).
  void take_buffers() noexcept {
    snapshot_.swap(globals().snapshot_buffer);
    edges_.swap(globals().edges_buffer);
  }

  // Holds every tracked object that is alive and not already condemned by another collection,
  // one shard at a time: allocations and deaths elsewhere go on meanwhile.
  void take_snapshot() {
    for (auto& shard : gc_registry::instance().shards) {
      shard.lock_with_room(snapshot_);
      std::lock_guard lock(shard.lock, std::adopt_lock);
      for (auto* r = shard.head; r; r = r->next) {
        auto hold = r->hold();
        if (!hold) continue;
        r->slot = static_cast<std::uint32_t>(snapshot_.size());
        auto count = static_cast<std::int32_t>(hold.use_count());
        snapshot_.push_back(entry{r, std::move(hold), count, count - 1});  // -1: the hold
      }
    }
    record_to_header_ = gc_registry::header_offset.load(std::memory_order_relaxed) +
                        static_cast<std::ptrdiff_t>(sizeof(gc_record));
  }

  // Lists the ephemeron maps, and lowers each snapshot object's count by the strong edges the
  // tracked objects and the ephemerons' values hold to it: what is left are outside owners.
  // The caller holds the registry's lock.
  void subtract_internal_edges() {
    tables_.clear();
    ephemerons_.clear();
    gc_ephemeron_registry::instance().for_each([&](gc_ephemeron_table& map) {
      map.gc_scratch_index = static_cast<std::uint32_t>(tables_.size());
      tables_.push_back(table_state{&map});
    });

    subtract_edges subtract;
    subtract.run = this;
    gc::visitor counting(gc::visitor::mode::count, &subtract);
    weak_holders_.clear();
    edges_.clear();
    edges_.reserve(snapshot_.size());  // one each, typically
    edges_begin_.resize(snapshot_.size() + 1);
    most_shared_edges_ = 0;
    for (std::size_t i = 0; i < snapshot_.size(); ++i) {
      edges_begin_[i] = static_cast<std::uint32_t>(edges_.size());
      subtract.current = static_cast<std::uint32_t>(i);
      auto seen = counting.shared_seen_;
      traverse(*snapshot_[i].record, counting);
      most_shared_edges_ = std::max(most_shared_edges_, counting.shared_seen_ - seen);
      if (edges_.size() > std::uint32_t{0xffffffff}) throw std::bad_alloc();  // indexed by 32 bits
    }
    edges_begin_[snapshot_.size()] = static_cast<std::uint32_t>(edges_.size());
    subtract.current = no_slot;
    for (auto& t : tables_) {
      auto before_values = counting.shared_seen_;
      t.first = static_cast<std::uint32_t>(ephemerons_.size());
      auto index = static_cast<std::uint32_t>(&t - tables_.data());
      for (std::size_t i = 0, n = t.map->gc_entry_count(); i < n; ++i) {
        auto* key = t.map->gc_entry_key(i);
        if (!key) continue;
        auto slot = no_slot;
        if (!key->alive()) {
          slot = dead_key;
        } else if (auto* k = key->header().tracked() ? entry_of(key->header()) : nullptr) {
          slot = slot_of(*k);
        }
        ephemerons_.push_back(ephemeron{index, slot, i});
        t.map->gc_visit_value(i, counting);
      }
      t.last = static_cast<std::uint32_t>(ephemerons_.size());
      t.value_edges = counting.shared_seen_ - before_values;
    }
    // A count below zero means more edges were seen than the object has owners. A traverse
    // that visits an edge twice does that, but so does a synchronized writer on another thread
    // that moves an edge from an object already traversed to one not yet traversed: the same
    // edge is then subtracted twice, and nothing tells the two apart. Throwing would make
    // collect() fail because of an ordinary concurrent mutator, so the object is kept as if
    // owned from outside, which is conservative: it and what it reaches stay alive, and a later
    // collection, with a consistent view, can still free them.
    for (auto& e : snapshot_) {
      if (e.outside < 0) e.outside = 1;
    }
  }

  // Marks what the outside owners keep alive: the objects with owners left, what they reach,
  // and the values of the ephemerons whose key and map are reached (iterated to a fixpoint, as
  // ephemeron marking does: a value marked may reach another ephemeron's key). Breadth first,
  // recording each object's parent when parents_ is set (why_alive), and stopping early once
  // `stop` is reached; otherwise depth first from each root in snapshot order, which is close
  // to memory order (an object and what it reaches are often allocated together): one sweep
  // over the objects instead of one per level.
  void mark_from_roots(std::uint32_t stop) {
    work_.clear();
    firing_.clear();
    if (ephemerons_.empty() && parents_.empty() && stop == no_slot) return mark_edges_only();
    index_waiting_ephemerons();
    mark_reached mark;
    mark.run = this;
    gc::visitor marking(gc::visitor::mode::count, &mark);
    if (parents_.empty() && stop == no_slot) {
      auto drain = [&] {
        for (;;) {
          if (!firing_.empty()) {
            mark_value(mark, marking);
          } else if (!work_.empty()) {
            auto slot = work_.back();
            work_.pop_back();
            mark_edges_of(slot);
          } else {
            return;
          }
        }
      };
      for (auto& t : tables_) {
        if (!t.owned) table_reached(t, no_slot);
      }
      drain();
      for (auto& e : snapshot_) {
        if (e.outside <= 0) continue;
        reach(e, no_slot, no_slot);
        drain();
      }
      return;
    }
    for (auto& e : snapshot_) {
      if (e.outside > 0) reach(e, no_slot, no_slot);
    }
    for (auto& t : tables_) {
      if (!t.owned) table_reached(t, no_slot);
    }
    for (std::size_t head = 0; head < work_.size() || !firing_.empty();) {
      if (stop != no_slot && snapshot_[stop].outside == entry::reached) return;
      if (!firing_.empty()) {
        mark_value(mark, marking);
      } else {
        mark_edges_of(work_[head++]);
      }
    }
  }

  // mark_from_roots without ephemerons (no value waits for its key), parents or a stop: a
  // map's edge only marks the map reached. The common case, in one tight loop.
  void mark_edges_only() {
    for (auto& t : tables_) {
      if (!t.owned) t.alive = true;
    }
    auto* entries = snapshot_.data();
    const auto* edges = edges_.data();
    const auto* edges_begin = edges_begin_.data();
    auto count = static_cast<std::uint32_t>(snapshot_.size());
    for (std::uint32_t root = 0; root < count; ++root) {
      if (entries[root].outside <= 0) continue;  // no outside owner, or reached already
      entries[root].outside = entry::reached;
      work_.push_back(root);
      while (!work_.empty()) {
        auto slot = work_.back();
        work_.pop_back();
        for (auto i = edges_begin[slot], end = edges_begin[slot + 1]; i < end; ++i) {
          auto edge = edges[i];
          if (edge & table_edge) {
            tables_[edge & ~table_edge].alive = true;
          } else if (entries[edge].outside != entry::reached) {
            entries[edge].outside = entry::reached;
            work_.push_back(edge);
          }
        }
      }
    }
  }

  // Marks what the value of the last ephemeron in firing_ reaches.
  void mark_value(mark_reached& mark, gc::visitor& marking) {
    auto which = firing_.back();
    firing_.pop_back();
    auto& eph = ephemerons_[which];
    mark.from = eph.from;
    mark.via = which;
    tables_[eph.table].map->gc_visit_value(eph.position, marking);
  }

  // Marks what a marked object reaches: its edges as the subtraction saw them, without a
  // second traverse (the counts are from before then too: an edge to a candidate stored since
  // was copied from a reference someone holds, which shows in the candidate's count or in its
  // holder's, as for an edge stored after a second traverse; see docs/design.md), and the
  // ephemerons it is the key of.
  void mark_edges_of(std::uint32_t slot) {
    for (auto i = edges_begin_[slot]; i < edges_begin_[slot + 1]; ++i) {
      auto edge = edges_[i];
      if (edge & table_edge) {
        table_reached(tables_[edge & ~table_edge], slot);
      } else {
        reach(snapshot_[edge], slot, no_slot);
      }
    }
    if (waiting_begin_.empty()) return;
    for (auto w = waiting_begin_[slot]; w < waiting_begin_[slot + 1]; ++w) {
      auto& eph = ephemerons_[waiting_[w]];
      if (tables_[eph.table].alive) fire(waiting_[w], slot);
    }
  }

  // For each snapshot slot, the ephemerons whose key it is (counting sort by key).
  void index_waiting_ephemerons() {
    waiting_.clear();
    waiting_begin_.clear();
    auto keyed = [&](const ephemeron& e) { return e.key < snapshot_.size(); };
    if (std::none_of(ephemerons_.begin(), ephemerons_.end(), keyed)) return;
    waiting_begin_.assign(snapshot_.size() + 1, 0);
    for (auto& e : ephemerons_) {
      if (keyed(e)) ++waiting_begin_[e.key + 1];
    }
    for (std::size_t i = 1; i < waiting_begin_.size(); ++i) {
      waiting_begin_[i] += waiting_begin_[i - 1];
    }
    waiting_.resize(waiting_begin_.back());
    auto next = waiting_begin_;
    for (std::size_t i = 0; i < ephemerons_.size(); ++i) {
      if (keyed(ephemerons_[i]))
        waiting_[next[ephemerons_[i].key]++] = static_cast<std::uint32_t>(i);
    }
  }

  void reach(entry& e, std::uint32_t from, std::uint32_t via) {
    if (e.outside == entry::reached) return;
    e.outside = entry::reached;
    auto slot = slot_of(e);
    if (!parents_.empty()) {
      parents_[slot] = from;
      vias_[slot] = via;
    }
    work_.push_back(slot);
  }

  void table_reached(table_state& t, std::uint32_t from) {
    if (t.alive) return;
    t.alive = true;
    for (auto i = t.first; i < t.last; ++i) {
      auto key = ephemerons_[i].key;
      if (key == no_slot) {
        fire(i, from);
      } else if (key != dead_key && snapshot_[key].outside == entry::reached) {
        fire(i, key);
      }
    }
  }

  void fire(std::uint32_t which, std::uint32_t from) {
    auto& eph = ephemerons_[which];
    if (eph.fired) return;
    eph.fired = true;
    eph.from = from;
    firing_.push_back(which);
  }

  // Condemns the unreached objects, then re-reads their counts: an owner that appeared since
  // the analysis read them (a lock of a weak reference, a copy from an object being walked)
  // changes a count, and then every candidate is reprieved. "Pending" is written, then a
  // sequentially consistent fence separates it from the re-read, as one separates a weakref
  // lock's reference from its read of the verdict: either the lock sees "pending" (and waits
  // for the decision) or the re-read sees its reference (see gc_admits). Under
  // ThreadSanitizer, which does not model fences, both sides use a read-modify-write of the
  // verdict instead, ordered in its modification order. The garbage then leaves the tracked lists,
  // and its weak references are detached (into calls_), still under the collector's lock.
  void condemn_unreached() {
    auto unreached = [](const entry& e) { return e.outside != entry::reached; };
    auto candidates = std::count_if(snapshot_.begin(), snapshot_.end(), unreached);
    if (candidates == 0) return;
    // Everything freeing needs is allocated now, while a failure still leaves nothing condemned.
    census_.reserve(weak_visits_);
    stolen_.reserve(ephemeron_edges_);
    std::size_t garbage_map_edges = 0;  // cleared with the garbage that owns those maps
    for (auto& t : tables_) {
      if (t.owned && !t.alive) {
        garbage_maps_.push_back(t.map->gc_serial());
        garbage_map_edges += t.value_edges;
      }
    }
    std::sort(garbage_maps_.begin(), garbage_maps_.end());
    // Room for every shared_ptr that the object with the most showed, tracked or not (any
    // object, not only garbage: a count per object would cost the analysis a store each), up to
    // 2^16, and for the values of the garbage's maps of ephemerons (cleared with their owner).
    // A clearing traverse takes them out; only if more turn up and growing this room fails does
    // it reset the rest in place, inside the traverse.
    taken_.reserve(std::min<std::size_t>(most_shared_edges_, std::size_t{1} << 16) +
                   garbage_map_edges + 16);
    // In blocks, so that a block's counts are read again while its objects are still in cache.
    // Each candidate's count is read after its own "pending", which is all a lock needs.
    constexpr std::size_t block = 64;
    for (std::size_t begin = 0; begin < snapshot_.size(); begin += block) {
      auto end = std::min(snapshot_.size(), begin + block);
      for (auto i = begin; i < end; ++i) {
        if (!unreached(snapshot_[i])) continue;
#if WEAKREF_GC_NO_FENCES
        snapshot_[i].record->verdict.exchange(gc_pending | gc_condemned, std::memory_order_acq_rel);
#else
        snapshot_[i].record->verdict.store(gc_pending | gc_condemned, std::memory_order_relaxed);
#endif
      }
#if !WEAKREF_GC_NO_FENCES
      // Between the writes and the re-reads, as gc_admits between a lock's reference and its
      // read of the verdict: one of the two sides sees the other.
      std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
      for (auto i = begin; i < end; ++i) {
        auto& e = snapshot_[i];
        if (unreached(e) && counted_again(e.hold) != e.count) reprieved_ = true;
      }
    }
#if !WEAKREF_GC_NO_FENCES
    std::atomic_thread_fence(std::memory_order_acquire);
#endif
    if (reprieved_) {
      for (auto& e : snapshot_) {
        if (unreached(e)) e.record->verdict.store(0, std::memory_order_release);
      }
      garbage_maps_.clear();
      return;
    }
    // The garbage, in one pass while each object is in cache: condemned, off the tracked lists
    // (keeping a shard locked across runs of garbage from it, usually one run: objects
    // allocated by one thread), and its weak references detached for their callbacks. Only
    // header locks (which nothing is taken under) are taken under the shard's.
    auto& registry = gc_registry::instance();
    gc_shard* locked = nullptr;
    auto** calls_end = &calls_;
    for (auto& e : snapshot_) {
      if (!unreached(e)) continue;
      auto& record = *e.record;
      auto* shard = &registry.shards[record.shard];
      if (shard != locked) {
        if (locked) locked->lock.unlock();
        locked = shard;
        locked->lock.lock();
      }
      gc_unlink(*shard, record);
      // Deaths skip the shard's lock from here on (it orders them after the unlink).
      record.verdict.store(gc_condemned | gc_unlinked, std::memory_order_release);
      // One chain for the whole collection: appending needs no room, so cannot fail.
      for (*calls_end = gc_header_of(record).detach_all(); *calls_end;) {
        calls_end = &(*calls_end)->next_;
      }
      e.outside = entry::condemned;
      ++garbage_count_;
    }
    if (locked) locked->lock.unlock();
  }

  // The use count again. use_count() is a relaxed load; condemn_unreached follows these reads
  // with an acquire fence, so that whatever the last outside owner did to an object before
  // letting it go happens before the collector clears it. ThreadSanitizer does not model
  // fences: there each read is an acquiring read-modify-write (a copy) instead.
  static long counted_again(const std::shared_ptr<const void>& hold) noexcept {
#if WEAKREF_GC_NO_FENCES
    std::shared_ptr<const void> probe = hold;
    return probe.use_count() - 1;
#else
    return hold.use_count();
#endif
  }

  // CPython's order: every weak reference to the garbage already reads dead (and is detached:
  // condemn_unreached); call back those that are not garbage themselves, then break the cycles
  // and let the objects go.
  void free_garbage(gc::collection_info& info) {
    // Census: the handles of weak references the garbage holds, sorted, so that a node's count
    // is the length of its run. Nothing here allocates (condemn_unreached reserved it all).
    count_weak_handles census;
    census.inside = &census_;
    gc::visitor counting(gc::visitor::mode::count, &census);
    {
      gc_busy_scope busy;
      gc_locked_scope locked;
      gc_maps_walk maps;
      for (auto slot : weak_holders_) {
        if (snapshot_[slot].outside == entry::condemned) traverse_garbage(slot, counting);
      }
      if (garbage_count_ != 0) free_ephemerons(counting);
    }
    std::sort(census_.begin(), census_.end());

    // A weak reference held only by garbage is cleared whatever it refers to, and never calls
    // back (CPython's handle_weakrefs); those to garbage are in calls_, with one more handle.
    for (auto run = census_.begin(); run != census_.end();) {
      auto end = std::upper_bound(run, census_.end(), *run);
      auto* node = *run;
      if (static_cast<std::size_t>(end - run) >= node->handles_.load(std::memory_order_acquire)) {
        clear_garbage_ref(*node);
      }
      run = end;
    }
    // The whole chain is sifted before any callback runs, as CPython's handle_weakrefs lists the
    // callbacks before calling one: a callback that drops handles (live ones, or garbage's
    // through a pointer it kept) must not change which later weak references are garbage.
    object_header::fire_chain(without_garbage_refs(std::exchange(calls_, nullptr)));

    // What locks handed over too late for an earlier collection. (Of this one's garbage,
    // nothing dies here: its holds are kept.)
    auto& late_owners = gc_registry::instance().late_owners;
    late_owners.release_all();
    if (garbage_count_ == 0) return;  // (a reprieve)
    gc::visitor clearing(gc::visitor::mode::clear, nullptr);
    clearing.taken_ = &taken_;  // let go of after each traverse returns (see clear_edge)
    auto deaths = gc_garbage_deaths_here;
    // Each object cleared, then let go (CPython's delete_garbage): it dies once the last garbage
    // edge to it is let go of, after its own clear, so every destructor finds its object
    // cleared. Nothing dies inside a traverse.
    for (std::uint32_t slot = 0; slot < snapshot_.size(); ++slot) {
      if (snapshot_[slot].outside != entry::condemned) continue;
      traverse_garbage(slot, clearing);
      taken_.clear();
      snapshot_[slot].hold.reset();
    }
    stolen_.clear();
    // The references locks took to the garbage meanwhile: once they have all handed over.
    late_owners.wait_for_lockers();
    late_owners.release_all();
    info.collected = gc_garbage_deaths_here - deaths;
    info.uncollectable = garbage_count_ > info.collected ? garbage_count_ - info.collected : 0;
  }

  // Unlinks a weak reference that only garbage holds from its (live) object: it no longer
  // counts in getweakrefcount and never calls back. Its weak_ptr stays (releasing the node
  // later needs the object's header), so a garbage destructor that locks it still gets a live
  // object (CPython: None).
  static void clear_garbage_ref(weakref_node& node) noexcept {
    node.callback_pending_.store(false, std::memory_order_release);
    node.header().unlink(&node);  // last: once unlinked, a release() may delete it without a lock
  }

  // The ephemerons that are garbage: in a map held only by garbage (all its values), or whose
  // key is condemned or dead (their values). Lists the weak handles their values hold, with the
  // rest of the census, and moves out the strong edges of those whose key is gone to release
  // with the garbage (a map drops its dead entries only at its next operation, maybe never; a
  // value that owns its key would keep the key until then). The garbage maps go off the
  // registry's list here: they are freed without its lock. No destructor runs here, and no
  // verdict is pending: collections decide only under the registry's lock, held here. (Queries
  // that traverse without that lock, get_referents and get_referrers, read a value only while
  // they hold its key: its edges are not moved out meanwhile.)
  void free_ephemerons(gc::visitor& counting) noexcept {
    struct steal_edges final : gc_edge_sink {
      std::vector<std::shared_ptr<const void>>* stolen;
      bool room() noexcept override { return stolen->size() < stolen->capacity(); }
      void steal(std::shared_ptr<const void>&& edge) noexcept override {
        stolen->push_back(std::move(edge));
      }
    } steal;
    steal.stolen = &stolen_;
    gc::visitor stealing(gc::visitor::mode::steal, &steal);
    auto& registry = gc_ephemeron_registry::instance();
    registry.for_each([&](gc_ephemeron_table& map) {
      bool garbage_map =
          std::binary_search(garbage_maps_.begin(), garbage_maps_.end(), map.gc_serial());
      for (std::size_t i = 0, n = map.gc_entry_count(); i < n; ++i) {
        auto* key = map.gc_entry_key(i);
        if (!key) continue;
        bool garbage_key = !key->alive();
        if (!garbage_map && !garbage_key) continue;
        try {
          map.gc_visit_value(i, counting);
          if (garbage_key) map.gc_visit_value(i, stealing);
        } catch (...) {
          report_unraisable(std::current_exception(), "weakref::gc traverse");
        }
      }
      if (garbage_map) registry.take_off_for_good(map);  // freed without the lock
    });
  }

  void traverse_garbage(std::uint32_t slot, gc::visitor& visit) noexcept {
    try {
      traverse(*snapshot_[slot].record, visit);
    } catch (...) {
      report_unraisable(std::current_exception(), "weakref::gc traverse");
    }
  }

  // Drops from a call chain the weak references all of whose handles garbage holds (CPython
  // does not call back a weakref that is itself garbage); the chain's own handle is the +1.
  weakref_node* without_garbage_refs(weakref_node* chain) noexcept {
    weakref_node* kept = nullptr;
    weakref_node** tail = &kept;
    while (chain) {
      auto* node = chain;
      chain = node->next_;
      node->next_ = nullptr;
      auto [first, last] = std::equal_range(census_.begin(), census_.end(), node);
      auto held = static_cast<std::size_t>(last - first);
      if (held != 0 && held + 1 >= node->handles_.load(std::memory_order_acquire)) {
        node->release();
      } else {
        *tail = node;
        tail = &node->next_;
      }
    }
    return kept;
  }

  std::vector<entry> snapshot_;
  std::vector<table_state> tables_;
  std::vector<ephemeron> ephemerons_;
  std::vector<std::uint32_t> waiting_;        // ephemerons by key slot ...
  std::vector<std::uint32_t> waiting_begin_;  // ... from waiting_begin_[slot]; empty: none keyed
  std::vector<std::uint32_t> edges_;          // the slots (or table_edge | table) each ...
  std::vector<std::uint32_t> edges_begin_;   // ... slot's traverse reached: from edges_begin_[slot]
  std::vector<std::uint32_t> work_;          // marked slots, in the order marked (a queue)
  std::vector<std::uint32_t> firing_;        // ephemerons whose value is yet to be marked
  std::vector<std::uint32_t> parents_;       // queries: who marked each slot (no_slot: a root)
  std::vector<std::uint32_t> vias_;          // queries: through which ephemeron, or no_slot
  std::size_t ephemeron_edges_ = 0;          // strong edges in ephemeron values (room to steal)
  std::vector<std::uint64_t> garbage_maps_;  // serials of the maps held only by garbage
  std::vector<std::shared_ptr<const void>> stolen_;
  std::vector<std::shared_ptr<const void>> taken_;  // edges a clearing traverse took out
  std::size_t most_shared_edges_ = 0;        // the most shared_ptrs one object's traverse showed
  std::size_t garbage_count_ = 0;            // entries condemned
  std::vector<std::uint32_t> weak_holders_;  // snapshot slots, ascending
  std::size_t weak_visits_ = 0;              // weak handles the analysis saw
  std::vector<weakref_node*> census_;
  weakref_node* calls_ = nullptr;  // the garbage's weak references to call back, in one chain
  std::size_t examined_ = 0;
  bool reprieved_ = false;
  // gc_record_of's distance, read once by take_snapshot: learnt before the first record was
  // linked, so known whenever the snapshot is not empty.
  std::ptrdiff_t record_to_header_ = 0;
};

inline void gc_collect_automatically() noexcept {
  try {
    gc_collector::collect(false);
  } catch (...) {
    report_unraisable(std::current_exception(), "weakref::gc automatic collection");
  }
}

}  // namespace weakref::detail
