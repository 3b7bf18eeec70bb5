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
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

#if defined(__SANITIZE_THREAD__)
#define WEAKREF_GC_NO_FENCES 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEAKREF_GC_NO_FENCES 1
#endif
#endif
#ifndef WEAKREF_GC_NO_FENCES
#define WEAKREF_GC_NO_FENCES 0
#endif

namespace weakref::detail {

// Set while this thread runs collect(): a nested call returns 0, as in CPython.
inline thread_local bool gc_collecting_here = false;

class gc_collector {
 public:
  using callback = std::function<void(gc::phase, const gc::collection_info&)>;

  // One tracked object in a collection's snapshot (32 bytes). `hold` keeps it from dying under
  // the analysis (and is subtracted from its count).
  struct entry {
    static constexpr std::int32_t reached = -1;
    gc_record* record;
    std::shared_ptr<const void> hold;
    std::int32_t count = 0;    // use_count when the snapshot took it
    std::int32_t outside = 0;  // count minus the edges from the snapshot, then `reached`
  };

  struct state {
    std::mutex collect_mutex;  // one analysis at a time; never held while user code frees
    // Kept between collections (under collect_mutex): a new snapshot of a million objects
    // would otherwise page-fault its way into fresh memory each time.
    std::vector<entry> snapshot_buffer;
    std::mutex stats_mutex;
    gc::stats totals;
    std::vector<std::pair<std::size_t, callback>> callbacks;  // under stats_mutex
    std::size_t next_callback_id = 1;
  };

  // Never destroyed, as the registry; built in static storage, so the first use cannot fail.
  static state& globals() noexcept {
    alignas(state) static unsigned char storage[sizeof(state)];
    static state* s = new (storage) state();
    return *s;
  }

  // A full collection on this thread. `wait`: false for an automatic one, which gives way
  // to a collection already under way.
  static std::size_t collect(bool wait) {
    if (gc_collecting_here) return 0;
    if (!wait) {  // an automatic collection gives way to one under way
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

  static std::vector<std::shared_ptr<const void>> objects() {
    std::vector<std::shared_ptr<const void>> result;
    for (auto& shard : gc_registry::instance().shards) {
      shard.lock_with_room(result);
      std::lock_guard lock(shard.lock, std::adopt_lock);
      for (auto* r = shard.head; r; r = r->next) {
        if (r->verdict.load(std::memory_order_relaxed) != 0) continue;
        if (auto object = r->self.lock()) result.push_back(std::move(object));
      }
    }
    return result;
  }

 private:
  // Counts each strong edge to a snapshot object against that object's count.
  // Also notes which objects hold weak references (the census after the verdict visits only
  // those).
  struct subtract_edges final : gc_edge_sink {
    gc_collector* run;
    std::uint32_t current = 0;
    void strong(object_header& target, std::string_view) override {
      if (auto* e = run->entry_of(target)) --e->outside;
    }
    void weak(weakref_node&) override {
      ++run->weak_visits_;
      auto& holders = run->weak_holders_;
      if (holders.empty() || holders.back() != current) holders.push_back(current);
    }
  };
  // Marks what a reached object reaches.
  struct mark_reached final : gc_edge_sink {
    gc_collector* run;
    std::vector<entry*>* work;
    void strong(object_header& target, std::string_view) override {
      auto* e = run->entry_of(target);
      if (e && e->outside != entry::reached) {
        e->outside = entry::reached;
        work->push_back(e);
      }
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

  static void traverse(const entry& e, gc::visitor& visit) {
    e.record->type->traverse(e.record->object(), visit);
  }
  entry* entry_of(object_header& header) noexcept {
    auto& record = gc_record_of(header);
    auto slot = record.slot;
    return slot < snapshot_.size() && snapshot_[slot].record == &record ? &snapshot_[slot]
                                                                        : nullptr;
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

  // Finds the garbage: on return, garbage_ holds it, condemned (weak references read dead).
  void analyse() {
    std::unique_lock lock(globals().collect_mutex);
    gc_registry::instance().allocations.store(0, std::memory_order_relaxed);
    snapshot_.swap(globals().snapshot_buffer);
    try {
      take_snapshot();
      examined_ = snapshot_.size();
      find_unreached();
      condemn_unreached();  // throws only before it condemns anything
    } catch (...) {
      lock.unlock();
      release_snapshot();  // nothing was condemned or changed
      throw;
    }
    lock.unlock();
    release_snapshot();
  }

  // Lets go of the live objects' holds outside the lock (some may have lost every other owner
  // meanwhile, and then die here), and gives the buffer back for the next collection.
  void release_snapshot() {
    for (auto& e : snapshot_) e.hold.reset();
    snapshot_.clear();
    std::lock_guard lock(globals().collect_mutex);
    if (globals().snapshot_buffer.capacity() < snapshot_.capacity()) {
      snapshot_.swap(globals().snapshot_buffer);
    }
  }

  // Holds every tracked object that is alive and not already condemned by another collection,
  // one shard at a time: allocations and deaths elsewhere go on meanwhile.
  void take_snapshot() {
    for (auto& shard : gc_registry::instance().shards) {
      shard.lock_with_room(snapshot_);
      std::lock_guard lock(shard.lock, std::adopt_lock);
      for (auto* r = shard.head; r; r = r->next) {
        if (r->verdict.load(std::memory_order_relaxed) != 0) continue;
        auto hold = r->self.lock();
        if (!hold) continue;  // dying: its death waits for this lock to take it off the list
        r->slot = static_cast<std::uint32_t>(snapshot_.size());
        auto count = static_cast<std::int32_t>(hold.use_count());
        snapshot_.push_back(entry{r, std::move(hold), count, count - 1});  // -1: the hold
      }
    }
  }

  void find_unreached() {
    subtract_edges subtract;
    subtract.run = this;
    gc::visitor counting(gc::visitor::mode::count, &subtract);
    weak_holders_.clear();
    for (auto& e : snapshot_) {
      subtract.current = static_cast<std::uint32_t>(&e - snapshot_.data());
      traverse(e, counting);
    }

    std::vector<entry*> work;
    for (auto& e : snapshot_) {
      if (e.outside < 0) {
        throw std::logic_error(
            std::string("weakref::gc::collect: traverse reported more strong references to an "
                        "object of type ") +
            e.record->type->type->name() +
            " than it has owners (an edge visited twice, or one its object does not own); "
            "nothing was freed");
      }
      if (e.outside > 0) {
        e.outside = entry::reached;
        work.push_back(&e);
      }
    }
    mark_reached mark;
    mark.run = this;
    mark.work = &work;
    gc::visitor marking(gc::visitor::mode::count, &mark);
    while (!work.empty()) {
      auto* e = work.back();
      work.pop_back();
      traverse(*e, marking);
    }
  }

  // Condemns the unreached objects, then re-reads their counts: an owner that appeared since
  // the analysis read them (a lock of a weak reference, a copy from an object being walked)
  // changes a count, and then every candidate is reprieved. "Pending" is written with a
  // read-modify-write, which a weakref lock's own read-modify-write of the verdict either
  // precedes (then the re-read below sees its reference) or follows (then it waits for the
  // decision): see gc_admits.
  void condemn_unreached() {
    auto unreached = [](const entry& e) { return e.outside != entry::reached; };
    auto candidates = std::count_if(snapshot_.begin(), snapshot_.end(), unreached);
    if (candidates == 0) return;
    // Everything freeing needs is allocated now, while a failure still leaves nothing condemned.
    garbage_.reserve(static_cast<std::size_t>(candidates));
    calls_.reserve(static_cast<std::size_t>(candidates));
    census_.reserve(weak_visits_);
    for (auto& e : snapshot_) {
      if (unreached(e)) {
        e.record->verdict.exchange(gc_pending | gc_condemned, std::memory_order_acq_rel);
      }
    }
    for (auto& e : snapshot_) {
      if (unreached(e) && counted_again(e.hold) != e.count) reprieved_ = true;
    }
#if !WEAKREF_GC_NO_FENCES
    std::atomic_thread_fence(std::memory_order_acquire);
#endif
    auto holder = weak_holders_.begin();
    for (auto& e : snapshot_) {
      auto slot = static_cast<std::uint32_t>(&e - snapshot_.data());
      bool holds_weak = holder != weak_holders_.end() && *holder == slot;
      if (holds_weak) ++holder;
      if (!unreached(e)) continue;
      e.record->verdict.store(reprieved_ ? 0 : gc_condemned, std::memory_order_release);
      if (!reprieved_) garbage_.push_back(garbage{e.record, std::move(e.hold), holds_weak});
    }
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

  // CPython's order: every weak reference to the garbage already reads dead; call back those
  // that are not garbage themselves, then break the cycles and let the objects go.
  void free_garbage(gc::collection_info& info) {
    // Census: the handles of weak references the garbage holds, sorted, so that a node's count
    // is the length of its run. Nothing here allocates (condemn_unreached reserved it all).
    count_weak_handles census;
    census.inside = &census_;
    gc::visitor counting(gc::visitor::mode::count, &census);
    traverse_garbage(counting, true);
    std::sort(census_.begin(), census_.end());

    for (auto& g : garbage_) calls_.push_back(gc_header_of(*g.record).detach_all());
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
    for (auto* chain : calls_) object_header::fire_chain(without_garbage_refs(chain));

    untrack_garbage();
    gc::visitor clearing(gc::visitor::mode::clear, nullptr);
    auto deaths = gc_garbage_deaths_here;
    traverse_garbage(clearing, false);
    auto found = garbage_.size();
    std::vector<garbage>().swap(garbage_);
    info.collected = gc_garbage_deaths_here - deaths;
    info.uncollectable = found > info.collected ? found - info.collected : 0;
  }

  // Unlinks a weak reference that only garbage holds from its (live) object: it no longer
  // counts in getweakrefcount and never calls back. Its weak_ptr stays (releasing the node
  // later needs the object's header), so a garbage destructor that locks it still gets a live
  // object (CPython: None).
  static void clear_garbage_ref(weakref_node& node) noexcept {
    node.header().unlink(&node);
    node.callback_pending_.store(false, std::memory_order_release);
  }

  // Takes the garbage off the tracked lists, keeping a shard locked across runs of garbage
  // from it (usually one run: objects allocated by one thread): their deaths then skip the
  // lock. A garbage object that outlives the collection stays condemned, off the lists.
  void untrack_garbage() noexcept {
    auto& registry = gc_registry::instance();
    gc_shard* locked = nullptr;
    for (auto& g : garbage_) {
      auto& record = *g.record;
      auto* shard = &registry.shards[record.shard];
      if (shard != locked) {
        if (locked) locked->lock.unlock();
        locked = shard;
        locked->lock.lock();
      }
      gc_unlink(*shard, record);
    }
    if (locked) locked->lock.unlock();
  }

  void traverse_garbage(gc::visitor& visit, bool weak_holders_only) noexcept {
    for (auto& g : garbage_) {
      if (weak_holders_only && !g.holds_weak) continue;
      try {
        auto& record = *g.record;
        record.type->traverse(record.object(), visit);
      } catch (...) {
        report_unraisable(std::current_exception(), "weakref::gc traverse");
      }
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
  struct garbage {
    gc_record* record;
    std::shared_ptr<const void> hold;
    bool holds_weak;  // its traverse reported weak references
  };
  std::vector<garbage> garbage_;
  std::vector<std::uint32_t> weak_holders_;  // snapshot slots, ascending
  std::size_t weak_visits_ = 0;              // weak handles the analysis saw
  std::vector<weakref_node*> census_;
  std::vector<weakref_node*> calls_;
  std::size_t examined_ = 0;
  bool reprieved_ = false;
};

inline void gc_collect_automatically() noexcept {
  try {
    gc_collector::collect(false);
  } catch (...) {
    report_unraisable(std::current_exception(), "weakref::gc automatic collection");
  }
}

}  // namespace weakref::detail
