// weakref/detail/gc_ephemeron.hpp — the weak_key_maps whose values can hold strong edges, as
// the cycle collector sees them: tables of ephemerons (a value is alive only while its key is
// reachable from elsewhere and its map is alive), registered so that a collection finds the
// maps that no tracked object owns.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <typeinfo>

#include "weakref/detail/gc_registry.hpp"
#include "weakref/detail/object_header.hpp"

namespace weakref::gc {
class visitor;
}

namespace weakref::detail {

// What a collection reads of one weak_key_map with traversable values. Every such map is on
// the registry's list from construction to destruction (gc_ephemeron_registration, its last
// member); the collector walks the list under the registry's lock, so a map is never destroyed
// under a walk (its destructor waits).
class gc_ephemeron_table {
 public:
  // Positions 0 .. gc_entry_count()-1; an entry is its key's weak reference (null: no entry at
  // that position) and its value.
  virtual std::size_t gc_entry_count() const noexcept = 0;
  virtual weakref_node* gc_entry_key(std::size_t position) const noexcept = 0;
  virtual void gc_visit_value(std::size_t position, gc::visitor& visit) = 0;

  // Unique per registration, so that a collection can recognise a map it met before even if
  // another map was since built at the same address.
  std::uint64_t gc_serial() const noexcept { return serial_; }
  // The map's type, for introspection.
  virtual const std::type_info& gc_map_type() const noexcept = 0;

  // Scratch of whoever holds the registry's lock: the map's index in its list of maps.
  std::uint32_t gc_scratch_index = 0;

 protected:
  gc_ephemeron_table() noexcept = default;
  gc_ephemeron_table(const gc_ephemeron_table&) noexcept {}  // not on the list, as any new map
  gc_ephemeron_table& operator=(const gc_ephemeron_table&) noexcept { return *this; }
  // Virtual only so that a weak_key_map, which has virtual functions through this base, can be
  // destroyed through any pointer without a warning; nothing deletes through this base.
  virtual ~gc_ephemeron_table() = default;

 private:
  friend struct gc_ephemeron_registry;
  friend class gc_ephemeron_registration;
  inline void link() noexcept;
  inline void unlink() noexcept;

  gc_ephemeron_table* prev_ = nullptr;  // on the registry's list, under its lock
  gc_ephemeron_table* next_ = nullptr;
  std::uint64_t serial_ = 0;
  // Taken off the list by a collection that found it garbage: its destruction (inside a
  // clearing traverse, maybe under a lock another thread's analysis waits for while it holds
  // the registry's) needs no lock.
  std::atomic<bool> unlisted_for_good_{false};
};

struct gc_ephemeron_registry {
  // Held by a collection for its whole walk of the tables (traverses of values included), and
  // by a table's construction and destruction.
  gc_spin_lock lock;
  gc_ephemeron_table* head = nullptr;
  std::size_t linked = 0;
  std::uint64_t next_serial = 1;

  WEAKREF_PROCESS_WIDE static gc_ephemeron_registry& instance() noexcept {
    alignas(gc_ephemeron_registry) static unsigned char storage[sizeof(gc_ephemeron_registry)];
    static gc_ephemeron_registry* registry = new (storage) gc_ephemeron_registry();
    return *registry;
  }

  // f(map) for each map on the list; f may take that map off it.
  template <class F>
  void for_each(F f) {
    for (auto* t = head; t;) {
      auto* next = t->next_;
      f(*t);
      t = next;
    }
  }

  // Whether `map` is on the list (under the lock): a collection takes a map that only garbage
  // holds off the list for good, as it frees it without the lock (no later walk may read it).
  bool listed(const gc_ephemeron_table& map) const noexcept {
    return map.prev_ != nullptr || head == &map;
  }
  void take_off(gc_ephemeron_table& map) noexcept {  // under the lock
    (map.prev_ ? map.prev_->next_ : head) = map.next_;
    if (map.next_) map.next_->prev_ = map.prev_;
    map.prev_ = map.next_ = nullptr;
    --linked;
  }
  void take_off_for_good(gc_ephemeron_table& map) noexcept {  // under the lock
    take_off(map);
    map.unlisted_for_good_.store(true, std::memory_order_release);
  }
};

// Set while this thread holds the registry's lock for a walk of the tables (gc_maps_walk): the
// traverses run meanwhile are on this thread.
WEAKREF_PROCESS_WIDE inline thread_local bool gc_maps_walked_here = false;

// The registry's lock, held by a collection or a query for its walk of the tables (traverses
// included). Never nested: a traverse a walk runs can start neither a collection (collect()
// returns 0) nor a query (it throws), nor make or destroy a map (the program stops).
class gc_maps_walk {
 public:
  gc_maps_walk() noexcept {
    gc_ephemeron_registry::instance().lock.lock();
    gc_maps_walked_here = true;
  }
  ~gc_maps_walk() {
    gc_maps_walked_here = false;
    gc_ephemeron_registry::instance().lock.unlock();
  }
  gc_maps_walk(const gc_maps_walk&) = delete;
  gc_maps_walk& operator=(const gc_maps_walk&) = delete;
};

// A map created or destroyed by a traverse that a walk of the tables runs on this thread: it
// would wait for its own thread's lock forever (and a destroyed map would still be walked).
// traverse must only visit (gc.hpp); this is reported instead of hanging.
[[noreturn]] inline void gc_map_changed_during_walk() noexcept {
  std::fputs(
      "weakref::gc: a weak_key_map of traversable values was created or destroyed inside a "
      "traverse that a collection or query runs on this thread (traverse must only visit: it "
      "must not create objects or drop references)\n",
      stderr);
  std::abort();
}

// Puts a map on the registry's list for as long as it lives. It must be the map's last member:
// members are built after the map's bases and destroyed before them, so the collector never
// calls the map's virtual functions while its vtable pointer changes (as it does while bases
// are built or destroyed).
class gc_ephemeron_registration {
 public:
  explicit gc_ephemeron_registration(gc_ephemeron_table* map) noexcept : map_(map) { map->link(); }
  gc_ephemeron_registration(const gc_ephemeron_registration&) = delete;  // use the map's `this`
  gc_ephemeron_registration& operator=(const gc_ephemeron_registration&) noexcept {
    return *this;  // a map stays itself when assigned
  }
  ~gc_ephemeron_registration() { map_->unlink(); }

 private:
  gc_ephemeron_table* map_;
};

// In a map that is not a table of ephemerons.
struct gc_no_registration {
  explicit gc_no_registration(const void*) noexcept {}
  gc_no_registration(const gc_no_registration&) = delete;
  gc_no_registration& operator=(const gc_no_registration&) noexcept { return *this; }
};

inline void gc_ephemeron_table::link() noexcept {
  if (gc_maps_walked_here) gc_map_changed_during_walk();
  auto& registry = gc_ephemeron_registry::instance();
  std::lock_guard guard(registry.lock);
  serial_ = registry.next_serial++;
  next_ = registry.head;
  if (next_) next_->prev_ = this;
  registry.head = this;
  ++registry.linked;
}

inline void gc_ephemeron_table::unlink() noexcept {
  if (unlisted_for_good_.load(std::memory_order_acquire)) return;
  if (gc_maps_walked_here) gc_map_changed_during_walk();
  auto& registry = gc_ephemeron_registry::instance();
  std::lock_guard guard(registry.lock);
  if (registry.listed(*this)) registry.take_off(*this);
}

}  // namespace weakref::detail
