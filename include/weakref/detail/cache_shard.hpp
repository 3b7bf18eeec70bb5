// weakref/detail/cache_shard.hpp — one shard of weakref::cache: a mutex, the weak table of its
// keys' values, and the creations in flight for its keys.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "weakref/detail/weak_table.hpp"
#include "weakref/weak_value_map.hpp"

namespace weakref::detail {

// The shard lock. It guards a lookup or a table update, never a factory nor a key's or a
// value's destructor, so it is held briefly: a probe or two, plus the user code an update
// runs (KeyEqual, a key's copy when an entry is added) and an occasional rehash. Spinning, then
// yielding, beats a kernel mutex here, and unlocking is a plain store (a std::mutex's unlock is a
// second atomic read-modify-write, a third of an uncontended hit's cost).
class cache_spin_lock {
 public:
  void lock() noexcept {
    for (unsigned spins = 0; locked_.exchange(true, std::memory_order_acquire);) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins >= 64) std::this_thread::yield();
      }
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

// Aligned to a cache line so that two threads on two shards never share one.
template <class K, class V>
struct alignas(64) cache_shard {
  using fields = value_map_fields<K, V>;  // the entry holds the key; the value is held weakly
  using table = weak_table<fields>;
  // Where the entries a locked operation takes out wait, keys and all, until the caller has let
  // go of the lock (a key's destructor may call the cache). Declare it before the lock.
  using graveyard = typename table::graveyard;

  // A creation in flight: lives on its creator's stack, listed in `creating` meanwhile.
  struct pending {
    std::uint64_t hash;
    const K* key;  // the creator's argument
    std::thread::id creator;
  };

  // The entry for `key` (a K, or another key type KeyEqual takes), or null; applies the
  // pending deaths first (into `g`). Its value may be dead. Call with `mutex` held: the entry,
  // and the key it stores, stay while it is.
  template <class Key, class KeyEqual>
  typename table::node* lookup(std::uint64_t hash, const Key& key, const KeyEqual& equal,
                               graveyard& g) {
    entries.settle(g);
    return entries.find(hash, [&](const fields& f) { return equal(f.key, key); });
  }
  // The live value for `key`, or null; as lookup().
  template <class Key, class KeyEqual>
  std::shared_ptr<V> find(std::uint64_t hash, const Key& key, const KeyEqual& equal, graveyard& g) {
    auto* n = lookup(hash, key, equal, g);
    return n ? n->lock_element() : nullptr;
  }

  // The creation in flight for `key`, or null. Call with `mutex` held.
  template <class KeyEqual>
  const pending* find_pending(std::uint64_t hash, const K& key, const KeyEqual& equal) const {
    for (const auto* p : creating) {
      if (p->hash == hash && equal(*p->key, key)) return p;
    }
    return nullptr;
  }

  // Stores `value` (non-null, weakrefable) under `key`, replacing a dead entry still listed.
  // Call with `mutex` held; what leaves goes to `g`. Strong guarantee (for the table).
  template <class KeyEqual>
  void store(object_header& header, std::uint64_t hash, const K& key,
             const std::shared_ptr<V>& value, const KeyEqual& equal, graveyard& g) {
    entries.settle(g);
    if (auto* n = entries.find(hash, [&](const fields& f) { return equal(f.key, key); })) {
      entries.renode(n, header, value, g);
    } else {
      entries.append(g, header, value, hash, key);
    }
  }

  // Waits (with `lock`, on `mutex`, released meanwhile) until a creation of this shard ends.
  void wait_for_creation(std::unique_lock<cache_spin_lock>& lock) noexcept {
    ++waiting;
    const auto seen = finished.load(std::memory_order_relaxed);  // read under the lock: no
    lock.unlock();                                               // ending can slip past it
    finished.wait(seen, std::memory_order_acquire);
    lock.lock();
    --waiting;
  }

  // Ends creation `p` (whatever its outcome) and wakes the callers waiting for one. Call with
  // `mutex` held.
  void finish(const pending& p) noexcept {
    creating.erase(std::find(creating.begin(), creating.end(), &p));
    finished.fetch_add(1, std::memory_order_release);
    if (waiting != 0) finished.notify_all();
  }

  cache_spin_lock mutex;
  table entries;
  std::vector<const pending*> creating;    // usually empty: one per creation in flight
  std::atomic<std::uint32_t> finished{0};  // creations ended so far (waited on with wait())
  std::size_t waiting = 0;                 // callers in wait_for_creation()
};

}  // namespace weakref::detail
