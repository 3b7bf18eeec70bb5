// weakref/detail/gc_registry.hpp — the cycle collector's per-object record and the lists of
// tracked objects: what weakref::make_shared adds for a type with traverse, what the object's
// death removes, and the verdict a collection leaves on the objects it examines.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <thread>
#include <typeinfo>

#include "weakref/detail/object_header.hpp"

namespace weakref::gc {
class visitor;
}

// ThreadSanitizer does not model fences: the collector and weakref locks then order themselves
// with read-modify-writes instead (gc_admits, gc_collector::condemn_unreached).
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

// What the collector needs of a tracked type: one per (T, allocator), as a constant.
struct gc_type {
  void (*traverse)(void* object, gc::visitor& visit);
  const std::type_info* type;
  std::size_t object_offset;  // from the record's address to the object's
};

// A collection's verdict on an object, read by every weak reference lock (weakref_node::lock).
enum gc_verdict_bits : std::uint8_t {
  gc_pending = 1,    // condemned, being re-checked: locks wait for the decision
  gc_condemned = 2,  // garbage: weak references read dead, the object is being freed
  gc_unlinked = 4,   // garbage its collection took off the lists: its death skips the lock
};

// gc_record: the collector's state for one tracked object. It sits at the front of the
// object's block, right before std::shared_ptr's control block, so the collector finds it from
// the object_header (the deleter, inside the control block) at a constant distance:
//
//   [ gc_record | control block (..., object_header, ...) | T ]
//
// Its only non-trivial member, `self`, is reset when the object dies; the rest stays readable
// until the block is freed (weak references read `verdict` after death).
struct gc_record {
  gc_record* prev = nullptr;  // in its shard's list, under the shard's lock
  gc_record* next = nullptr;
  const gc_type* type = nullptr;
  std::weak_ptr<const void> self;  // the object's counts: use_count() and lock()
  std::atomic<std::uint8_t> verdict{0};
  std::uint8_t shard = 0;
  // Scratch of the collection that holds the collector's lock: the record's slot in that
  // collection's snapshot (valid when the slot points back at this record).
  std::uint32_t slot = 0;

  void* object() const noexcept {
    return const_cast<std::byte*>(reinterpret_cast<const std::byte*>(this)) + type->object_offset;
  }
  // A strong reference to the object; null if it is dying, or if a collection condemned it (or
  // is deciding whether to). How every walk of a shard's list takes one, under the shard's lock
  // (a dying object's death waits for that lock to take it off the list).
  std::shared_ptr<const void> hold() const noexcept {
    if (verdict.load(std::memory_order_relaxed) != 0) return nullptr;
    return self.lock();
  }
};

// A spin lock for the shards: taken for a few pointer writes by the owner thread's
// allocations and deaths, and for one snapshot pass by a collection.
class gc_spin_lock {
 public:
  void lock() noexcept {
    for (unsigned spins = 0; locked_.exchange(true, std::memory_order_acquire); ++spins) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins >= 64) std::this_thread::yield();
      }
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

// The tracked objects, in shards so that threads allocating and freeing them rarely meet:
// each thread links its allocations into its own shard; a death unlinks from the object's.
struct alignas(64) gc_shard {
  gc_spin_lock lock;
  gc_record* head = nullptr;
  std::size_t linked = 0;  // records on the list: room to reserve before taking the lock
  // Tracked allocations into this shard since the last collection (gc::get_count sums them):
  // written under the lock, read without it. Per shard, so that an allocation adds no
  // read-modify-write of a line every allocating thread shares.
  std::atomic<std::size_t> allocations{0};

  // Locks the shard with room for every record on it at the end of `v` (whose growth may
  // throw, and must not happen under the lock: a strong reference dropped there could run a
  // death that takes this lock).
  template <class Vector>
  void lock_with_room(Vector& v) {
    for (;;) {
      lock.lock();
      if (v.capacity() - v.size() >= linked) return;
      auto needed = v.size() + linked;
      lock.unlock();
      v.reserve(needed + needed / 8 + 16);
    }
  }
};

// Strong references that locks took to objects a collection then condemned. Such a lock
// answers "dead"; dropping its reference itself could be the object's last release, running
// its destructor inside the lock (std::weak_ptr::lock never destroys anything, and a caller
// may hold a mutex the destructor takes). So it hands the reference to the collector, which
// waits for the locks that are doing so, then lets go of what they handed over. Only a lock
// delayed between taking its reference and counting itself in (nanoseconds, unless preempted
// there) can hand over after that; the next collection lets go of its reference.
class gc_late_owners {
 public:
  // A lock that found its object pending or condemned, until it has handed over.
  void enter() noexcept { lockers_.fetch_add(1, std::memory_order_acq_rel); }
  void leave() noexcept { lockers_.fetch_sub(1, std::memory_order_release); }
  // Waits first for a lock that took its reference just before the collector let go of its
  // own to count itself in: its few instructions in between (a fence and a load) take well
  // under a microsecond, unless it is preempted there.
  void wait_for_lockers() const noexcept {
    auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(2);
    while (std::chrono::steady_clock::now() < until) {
    }
    while (lockers_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  }

  // Takes `owner` (leaving it empty); lets go of it here only if every slot is taken.
  void hand_over(std::shared_ptr<const void>& owner) noexcept {
    for (auto& slot : slots_) {
      if (slot.state.load(std::memory_order_relaxed) != empty) continue;
      int expected = empty;
      if (slot.state.compare_exchange_strong(expected, writing, std::memory_order_acquire)) {
        slot.owner = std::move(owner);
        slot.state.store(full, std::memory_order_release);
        return;
      }
    }
    owner.reset();
  }
  // Lets go of the references handed over: the destructors of their objects may run here.
  void release_all() noexcept {
    for (auto& slot : slots_) {
      int expected = full;
      if (slot.state.load(std::memory_order_relaxed) != full ||
          !slot.state.compare_exchange_strong(expected, taking, std::memory_order_acquire)) {
        continue;
      }
      auto owner = std::move(slot.owner);
      slot.state.store(empty, std::memory_order_release);
    }
  }

 private:
  enum : int { empty, writing, full, taking };
  struct slot {
    std::atomic<int> state{empty};
    std::shared_ptr<const void> owner;
  };
  std::atomic<int> lockers_{0};
  slot slots_[64];  // as many as locks that race one collection's decision at once
};

struct gc_registry {
  static constexpr std::size_t shard_count = 16;
  gc_shard shards[shard_count];
  // The object_header's offset inside std::shared_ptr's control block, learnt from the first
  // tracked object and checked on every other: the record is found from the header by it.
  // Constant-initialized, outside instance(): every tracked lock reads it.
  WEAKREF_PROCESS_WIDE static inline constinit std::atomic<std::ptrdiff_t> header_offset{-1};
  std::atomic<std::uint32_t> next_shard{0};
  // Automatic collection (gc::enable) once the tracked allocations since the last collection
  // (the shards' counts) reach the threshold (0: never).
  std::atomic<bool> enabled{false};
  std::atomic<std::size_t> threshold{700};
  gc_late_owners late_owners;

  std::size_t allocations() const noexcept {
    std::size_t total = 0;
    for (auto& shard : shards) total += shard.allocations.load(std::memory_order_relaxed);
    return total;
  }
  void reset_allocations() noexcept {
    for (auto& shard : shards) {
      shard.lock.lock();
      shard.allocations.store(0, std::memory_order_relaxed);
      shard.lock.unlock();
    }
  }

  // Never destroyed: objects may die during static destruction, after any static here. Built in
  // static storage, so that the first tracked allocation cannot fail here.
  WEAKREF_PROCESS_WIDE static gc_registry& instance() noexcept {
    alignas(gc_registry) static unsigned char storage[sizeof(gc_registry)];
    static gc_registry* registry = new (storage) gc_registry();
    return *registry;
  }

  gc_shard& my_shard() noexcept {
    thread_local std::uint32_t mine = 0;  // shard index + 1; 0 until first used
    if (mine == 0) mine = next_shard.fetch_add(1, std::memory_order_relaxed) % shard_count + 1;
    return shards[mine - 1];
  }
};

// Garbage objects that died on this thread so far (collect() counts what it freed).
WEAKREF_PROCESS_WIDE inline thread_local std::size_t gc_garbage_deaths_here = 0;

inline gc_record& gc_record_of(const object_header& header) noexcept {
  auto offset = gc_registry::header_offset.load(std::memory_order_relaxed);
  auto* at = const_cast<std::byte*>(reinterpret_cast<const std::byte*>(&header));
  return *reinterpret_cast<gc_record*>(at - offset - sizeof(gc_record));
}

inline object_header& gc_header_of(gc_record& record) noexcept {
  auto offset = gc_registry::header_offset.load(std::memory_order_relaxed);
  auto* at = reinterpret_cast<std::byte*>(&record) + sizeof(gc_record) + offset;
  return *reinterpret_cast<object_header*>(at);
}

// Automatic collection after `threshold` tracked allocations; defined in gc.hpp.
inline void gc_collect_automatically() noexcept;

// Tracks the object of `owner`, whose block starts with `record`'s storage. Leaves it
// untracked (a root, as an object without traverse) in the one case the record could not be
// found from the header again: a standard library whose control block puts the deleter at
// different offsets for different types (none known does).
template <class T>
void gc_track(const std::shared_ptr<T>& owner, void* record_storage, const gc_type& type) noexcept {
  auto& registry = gc_registry::instance();
  auto* header = std::get_deleter<object_header>(owner);
  auto offset = reinterpret_cast<std::byte*>(header) -
                (static_cast<std::byte*>(record_storage) + sizeof(gc_record));
  auto known = registry.header_offset.load(std::memory_order_relaxed);
  if (known != offset) {
    if (known != -1) return;
    if (!registry.header_offset.compare_exchange_strong(known, offset, std::memory_order_relaxed) &&
        known != offset) {
      return;
    }
  }
  auto* record = new (record_storage) gc_record();
  record->type = &type;
  record->self = owner;
  header->set_tracked();

  auto& shard = registry.my_shard();
  record->shard = static_cast<std::uint8_t>(&shard - registry.shards);
  shard.lock.lock();
  record->next = shard.head;
  if (shard.head) shard.head->prev = record;
  shard.head = record;
  ++shard.linked;
  shard.allocations.store(shard.allocations.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
  shard.lock.unlock();

  if (registry.enabled.load(std::memory_order_relaxed)) {
    auto threshold = registry.threshold.load(std::memory_order_relaxed);
    if (threshold != 0 && registry.allocations() >= threshold) gc_collect_automatically();
  }
}

// A tracked object's death: off its shard's list, and its counts let go.
// Takes `record` off its shard's list; the caller holds the shard's lock. Marks it off the
// list (prev points at itself) so that its death does not do it again.
inline void gc_unlink(gc_shard& shard, gc_record& record) noexcept {
  if (record.prev) {
    record.prev->next = record.next;
  } else {
    shard.head = record.next;
  }
  if (record.next) record.next->prev = record.prev;
  record.prev = &record;
  --shard.linked;
}

inline void object_header::untrack(object_header& header) noexcept {
  auto& record = gc_record_of(header);
  // A collection takes its garbage off the lists in one pass before letting it go, and says so
  // in the verdict (after the unlink, under the lock: acquiring it here orders the two). Else
  // `prev` is read under the lock: a neighbour's unlink on another thread writes it.
  auto verdict = record.verdict.load(std::memory_order_acquire);
  if ((verdict & gc_unlinked) == 0) {
    auto& shard = gc_registry::instance().shards[record.shard];
    shard.lock.lock();
    if (record.prev != &record) gc_unlink(shard, record);
    shard.lock.unlock();
    verdict = record.verdict.load(std::memory_order_relaxed);
  }
  if (verdict & gc_condemned) ++gc_garbage_deaths_here;
  // The weak count it held cannot be the last: the strong owners hold one until we return.
  record.self.reset();
}

// The verdict as a lock reads it: after a sequentially consistent fence if `locked` (it holds
// a reference it has just taken), as the collector re-reads the use counts after one that
// follows its "pending" writes: so either the lock sees "pending" and waits for the decision,
// or the collector's re-read sees its reference. (Under ThreadSanitizer both sides use a
// read-modify-write of the verdict: ordered in its modification order, with the same outcome.)
inline std::uint8_t gc_verdict_for(gc_record& record, bool locked) noexcept {
#if WEAKREF_GC_NO_FENCES
  return locked ? record.verdict.fetch_or(0, std::memory_order_acq_rel)
                : record.verdict.load(std::memory_order_acquire);
#else
  if (locked) std::atomic_thread_fence(std::memory_order_seq_cst);
  return record.verdict.load(std::memory_order_acquire);
#endif
}
inline std::uint8_t gc_decided(gc_record& record, std::uint8_t verdict) noexcept {
  for (unsigned spins = 0; verdict & gc_pending; ++spins) {
    if (spins >= 64) std::this_thread::yield();
    verdict = record.verdict.load(std::memory_order_acquire);
  }
  return verdict;
}

inline bool gc_admits(const object_header& header, bool locked) noexcept {
  auto& record = gc_record_of(header);
  return (gc_decided(record, gc_verdict_for(record, locked)) & gc_condemned) == 0;
}

inline std::shared_ptr<const void> gc_lock(const object_header& header,
                                           const std::weak_ptr<const void>& object) noexcept {
  auto& record = gc_record_of(header);
  // Condemned for good: dead, and no reference is taken (an object a collection condemned may
  // live on, held by a std::shared_ptr locked from a std::weak_ptr).
  auto before = record.verdict.load(std::memory_order_acquire);
  if ((before & (gc_pending | gc_condemned)) == gc_condemned) return nullptr;
  auto owner = object.lock();
  if (!owner) return owner;
  auto verdict = gc_verdict_for(record, true);
  if ((verdict & (gc_pending | gc_condemned)) == 0) [[likely]]
    return owner;
  auto& late_owners = gc_registry::instance().late_owners;
  late_owners.enter();
  if (gc_decided(record, verdict) & gc_condemned) late_owners.hand_over(owner);
  late_owners.leave();
  return owner;
}

}  // namespace weakref::detail
