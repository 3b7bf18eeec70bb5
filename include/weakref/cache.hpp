// weakref/cache.hpp — weakref::cache<K, V>: a thread-safe get-or-create cache that shares one
// object per key while anyone uses it, keeps the `keep_recent` most recently used ones alive
// by itself, and forgets the others as they die. Python: the pattern
// `WeakValueDictionary` + `setdefault` (plus functools.lru_cache's recency for the strong
// front); Python has no single class for it.
//
// Example:
//   weakref::cache<std::string, Texture> textures(/*keep_recent=*/16);
//   std::shared_ptr<Texture> load(const std::string& path) {
//     // Calls the factory only if no live Texture exists for `path`; concurrent callers for
//     // the same path wait for that one creation and share its result.
//     return textures.get_or_create(path, [&] { return weakref::make_shared<Texture>(path); });
//   }
//
// Lifetime and thread-safety: every member may be called from any number of threads at once,
// the const ones included. A value lives while anyone holds it, or while it is among the
// `keep_recent` most recently used (held strongly by the cache); when it dies, on any thread,
// its entry leaves. Factories run with no lock held, so they may call into the cache (for
// other keys; asking for the very key being created throws std::logic_error). The cache never
// destroys a key or releases a value while it holds a lock, so their destructors may call into
// the cache too.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "weakref/detail/cache_recent.hpp"
#include "weakref/detail/cache_shard.hpp"
#include "weakref/detail/weak_table.hpp"
#include "weakref/make_shared.hpp"

namespace weakref {

namespace detail {
template <class T>
inline constexpr bool cache_is_shared_ptr = false;
template <class T>
inline constexpr bool cache_is_shared_ptr<std::shared_ptr<T>> = true;
}  // namespace detail

// weakref::cache<K, V, Hash, KeyEqual>
//
// A map from keys to values (std::shared_ptr<V> to objects made by weakref::make_shared) held
// weakly, plus an LRU front holding the `keep_recent` most recently used values strongly.
// get_or_create(key, factory) returns the live value for `key`, or calls `factory` to make
// one: at most one factory runs per key at a time, and concurrent callers for that key wait
// for its result instead of running their own. Callers of other keys never wait for it.
// Uses (hits and creations by get_or_create, hits by get) make a value the most recent;
// contains() and size() do not. Keys are spread over 16 shards, each with its own lock, so
// threads working on different keys rarely meet. Neither copyable nor movable.
// Hash and KeyEqual are called concurrently from several threads, as const objects. With a
// transparent Hash and KeyEqual (both define is_transparent), get, contains and erase also take
// a key of another type that they accept, as std::unordered_map's lookups do, and make no K (a
// std::string_view for std::string keys). Equal keys must hash alike, whatever their type.
template <class K, class V, class Hash = std::hash<K>, class KeyEqual = std::equal_to<K>>
class cache {
  using shard = detail::cache_shard<K, V>;
  using recent_list = detail::cache_recent<K, V, KeyEqual>;
  // A key type other than K that the lookups take: any that Hash and KeyEqual accept, if they
  // are transparent.
  template <class Key>
  static constexpr bool other_key =
      detail::transparent_lookup<Hash, KeyEqual> && !std::is_same_v<std::remove_cvref_t<Key>, K>;

 public:
  using key_type = K;
  using mapped_type = std::shared_ptr<V>;
  using size_type = std::size_t;
  using hasher = Hash;
  using key_equal = KeyEqual;

  // An empty cache whose LRU front holds up to `keep_recent` values strongly (0: none, so a
  // value lives exactly as long as someone else holds it).
  explicit cache(std::size_t keep_recent = 0) : cache(keep_recent, Hash(), KeyEqual()) {}
  cache(std::size_t keep_recent, Hash hash, KeyEqual equal = KeyEqual())
      : hash_(std::move(hash)),
        equal_(std::move(equal)),
        keep_recent_(keep_recent),
        recent_(keep_recent, equal_) {}
  cache(const cache&) = delete;
  cache& operator=(const cache&) = delete;
  // Releases the recent values first, while the cache is whole: their destructors may still
  // use it (get, erase...). Nothing may be in flight, on other threads or on this one: unlike a
  // signal, a cache must not be destroyed by its own factory, nor by user code (a key's or
  // value's destructor) that one of its operations runs. Allocates nothing.
  ~cache() { resize_recent(0); }

  // The live value for `key`; if there is none, the value `factory` makes, stored under `key`.
  // `factory` is called as factory() or, if that does not compile, factory(key), with no lock
  // held, and returns either
  //   - a std::shared_ptr<U> (U* converting to V*) made by weakref::make_shared, or null:
  //     null is returned to this caller and stored nowhere; or
  //   - a value V is constructible from (V itself, typically): it is moved into
  //     weakref::make_shared<V>(...).
  // While one factory runs for `key`, other callers for `key` wait (without blocking other
  // keys) and then share its value; if it throws or returns null, each of them looks again
  // and the first one creates with its own factory.
  // A hit or creation makes the value the most recent.
  // `key` must stay unchanged until this returns: callers waiting for the creation compare
  // their keys with it.
  // Throws: what `factory`, Hash, KeyEqual or K's copy constructor throws; type_error if the
  // factory returns a std::shared_ptr not made by weakref::make_shared; std::logic_error if a
  // factory for `key` asks for `key` again on its own thread (it would wait for itself
  // forever); std::bad_alloc. Then the recency order is unchanged; a value this call created
  // may have been stored (if entering the LRU front threw), but it is released before the
  // exception leaves, so its entry leaves too unless another caller took the value meanwhile.
  // Two factories on two threads that each ask for the other's key deadlock, as two mutexes
  // locked in opposite orders would (only the same-thread case is detected).
  template <class F>
  std::shared_ptr<V> get_or_create(const K& key, F&& factory) {
    const auto hash = hash_of(key);
    auto& s = shard_for(hash);
    typename shard::graveyard dead;  // entries that left, destroyed after the lock
    std::unique_lock lock(s.mutex);
    if (keep_recent_.load(std::memory_order_relaxed) == 0) {  // then a hit needs nothing more
      if (auto value = s.find(hash, key, equal_, dead)) {
        lock.unlock();
        return value;
      }
    }
    return create(s, hash, key, factory, std::move(lock), dead);
  }

  // The live value for `key`, or null if absent or dead. Never creates, never waits for a
  // creation in flight. A hit makes the value the most recent.
  // Throws: what Hash or KeyEqual throws; what K's copy constructor throws and std::bad_alloc
  // (a hit entering the LRU front). Then the recency order is unchanged.
  // Each lookup by key also comes as a template for other key types (heterogeneous lookup),
  // present only with a transparent Hash and KeyEqual.
  std::shared_ptr<V> get(const K& key) const { return get_any(key); }
  template <class Key>
  std::shared_ptr<V> get(const Key& key) const requires other_key<Key> {
    return get_any(key);
  }

  // Whether `key` has a live value. Not a use: the recency order is unchanged.
  bool contains(const K& key) const { return contains_any(key); }
  template <class Key>
  bool contains(const Key& key) const requires other_key<Key> {
    return contains_any(key);
  }

  // The number of live values (entries whose value has died are not counted).
  size_type size() const {
    size_type n = 0;
    for (auto& s : shards_) {
      typename shard::graveyard dead;  // destroyed after the lock
      std::lock_guard lock(s.mutex);
      s.entries.settle(dead);
      n += s.entries.size();
    }
    return n;
  }
  bool empty() const { return size() == 0; }

  // Forgets `key`: removes its entry and its place in the LRU front (the value lives on only
  // if someone holds it). A creation in flight for `key` is not affected: it stores its value
  // when it ends. Returns whether a live value was forgotten.
  // Throws: what Hash or KeyEqual throws. Then nothing was forgotten.
  bool erase(const K& key) { return erase_any(key); }
  template <class Key>
  bool erase(const Key& key) requires other_key<Key> {
    return erase_any(key);
  }

  // Forgets every key, as erase() does, shard by shard: a value created meanwhile may stay.
  void clear() {
    for (auto& s : shards_) {
      typename shard::graveyard dead;  // destroyed after the lock
      std::lock_guard lock(s.mutex);
      s.entries.clear(dead);
    }
    typename recent_list::evicted released;  // likewise
    std::lock_guard recent_lock(recent_mutex_);
    recent_.clear(released);
  }

  // The size of the LRU front: how many of the most recently used values the cache keeps
  // alive by itself.
  std::size_t keep_recent() const noexcept { return keep_recent_.load(std::memory_order_relaxed); }

  // Sets the size of the LRU front; shrinking lets go of the least recent values beyond it,
  // least recent first. Allocates nothing.
  void resize_recent(std::size_t keep_recent) {
    typename recent_list::evicted released;  // destroyed after the lock
    std::lock_guard lock(recent_mutex_);
    keep_recent_.store(keep_recent, std::memory_order_relaxed);
    recent_.resize(keep_recent, released);
  }

  // The keys of the LRU front, most recent first (at most keep_recent() of them).
  // Throws: what K's copy constructor throws; std::bad_alloc.
  std::vector<K> recent_keys() const {
    std::lock_guard lock(recent_mutex_);
    return recent_.keys();
  }

 private:
  static constexpr std::size_t shard_count = 16;

  // get_or_create's general path, from `locked` (the shard's lock, held): a hit with the
  // front on, or a miss (create, or wait for the creation in flight).
  template <class F>
  // Entries leaving the table go to `dead` (the caller's, destroyed after the lock).
  std::shared_ptr<V> create(shard& s, std::uint64_t hash, const K& key, F& factory,
                            std::unique_lock<detail::cache_spin_lock>&& locked,
                            typename shard::graveyard& dead) {
    typename recent_list::released released;   // destroyed last, with no lock held
    std::shared_ptr<V> value;                  // likewise, if anything throws
    std::unique_lock lock(std::move(locked));  // so it is released before those two
    const typename shard::pending mine{hash, &key, std::this_thread::get_id()};
    for (;;) {
      if ((value = s.find(hash, key, equal_, dead))) {
        touch(hash, key, value, released);
        return value;
      }
      const auto* busy = s.find_pending(hash, key, equal_);
      if (!busy) break;
      if (busy->creator == mine.creator) {
        throw std::logic_error(
            "weakref::cache::get_or_create: the factory for this key asked for the same key "
            "(a recursive creation would wait for itself forever)");
      }
      s.wait_for_creation(lock);
    }
    s.creating.push_back(&mine);
    finish_guard guard(s, mine, lock);  // takes `mine` out again however this ends
    lock.unlock();
    value = make_value(factory, key);
    lock.lock();
    if (value) {
      s.store(detail::header_of(value, "weakref::cache::get_or_create"), hash, key, value, equal_,
              dead);
      touch(hash, key, value, released);
    }
    return value;
  }

  template <class Key>
  std::shared_ptr<V> get_any(const Key& key) const {
    const auto hash = hash_of(key);
    auto& s = shard_for(hash);
    typename recent_list::released released;  // destroyed after the lock
    std::shared_ptr<V> value;
    typename shard::graveyard dead;  // likewise
    std::lock_guard lock(s.mutex);
    auto* n = s.lookup(hash, key, equal_, dead);
    // The front gets a copy of the stored key (`key` may be of another type); the entry stays
    // while the shard is locked.
    if (n && (value = n->lock_element())) touch(hash, n->fields().key, value, released);
    return value;
  }
  template <class Key>
  bool contains_any(const Key& key) const {
    const auto hash = hash_of(key);
    auto& s = shard_for(hash);
    std::shared_ptr<V> value;  // released after the lock: it may be the last owner by now
    typename shard::graveyard dead;
    std::lock_guard lock(s.mutex);
    value = s.find(hash, key, equal_, dead);
    return value != nullptr;
  }
  template <class Key>
  bool erase_any(const Key& key) {
    const auto hash = hash_of(key);
    auto& s = shard_for(hash);
    std::shared_ptr<V> value;              // released after the locks
    typename recent_list::evicted recent;  // likewise
    typename shard::graveyard dead;        // likewise
    std::lock_guard lock(s.mutex);
    s.entries.settle(dead);
    // Every lookup (which may throw) before the first change.
    auto* n =
        s.entries.find(hash, [&](const typename shard::fields& f) { return equal_(f.key, key); });
    std::lock_guard recent_lock(recent_mutex_);
    auto pos = recent_.find(hash, key);
    if (n) {
      value = n->lock_element();
      s.entries.erase(n, dead);
    }
    if (pos != recent_.end()) recent_.erase(pos, recent);
    return value != nullptr;
  }

  // Takes creation `mine` out of its shard's list and wakes its waiters, on every way out of
  // get_or_create once it is listed (the lock is held again by then).
  class finish_guard {
   public:
    finish_guard(shard& s, const typename shard::pending& mine,
                 std::unique_lock<detail::cache_spin_lock>& lock) noexcept
        : shard_(s), mine_(mine), lock_(lock) {}
    finish_guard(const finish_guard&) = delete;
    finish_guard& operator=(const finish_guard&) = delete;
    ~finish_guard() {
      if (!lock_.owns_lock()) lock_.lock();  // the factory threw
      shard_.finish(mine_);
    }

   private:
    shard& shard_;
    const typename shard::pending& mine_;
    std::unique_lock<detail::cache_spin_lock>& lock_;
  };

  template <class Key>
  std::uint64_t hash_of(const Key& key) const {
    return detail::mix_hash(hash_(key));
  }
  // Bits 24-27 of the mixed hash: the table's index uses bits 28 and up.
  shard& shard_for(std::uint64_t hash) const noexcept {
    return shards_[(hash >> 24) & (shard_count - 1)];
  }

  // Makes `value` the most recent (if the front is on); what leaves the front goes to `out`
  // (the caller destroys it after its locks). Call with the key's shard locked (so erase()
  // never sees the front and the table disagree). Strong guarantee.
  void touch(std::uint64_t hash, const K& key, const std::shared_ptr<V>& value,
             typename recent_list::released& out) const {
    if (keep_recent_.load(std::memory_order_relaxed) == 0) return;
    std::lock_guard lock(recent_mutex_);
    recent_.touch(hash, key, value, out);
  }

  template <class F>
  static decltype(auto) call(F& factory, const K& key) {
    if constexpr (std::is_invocable_v<F&>) {
      return std::invoke(factory);
    } else {
      static_assert(std::is_invocable_v<F&, const K&>,
                    "weakref::cache::get_or_create: the factory must be callable as factory() or "
                    "factory(key)");
      return std::invoke(factory, key);
    }
  }

  // The factory's result as a std::shared_ptr<V>; type_error if it cannot be weakly referenced.
  template <class F>
  static std::shared_ptr<V> make_value(F& factory, const K& key) {
    using result = std::remove_cvref_t<decltype(call(factory, key))>;
    if constexpr (detail::cache_is_shared_ptr<result>) {
      static_assert(std::is_convertible_v<result, std::shared_ptr<V>>,
                    "weakref::cache::get_or_create: the factory returns a std::shared_ptr whose "
                    "pointer does not convert to V*");
      std::shared_ptr<V> value = call(factory, key);
      if (value) detail::header_of(value, "weakref::cache::get_or_create");  // or type_error
      return value;
    } else {
      static_assert(std::is_constructible_v<V, result>,
                    "weakref::cache::get_or_create: the factory must return a std::shared_ptr "
                    "made by weakref::make_shared, or a value V can be constructed from");
      return weakref::make_shared<V>(call(factory, key));
    }
  }

  [[no_unique_address]] Hash hash_;
  [[no_unique_address]] KeyEqual equal_;
  std::atomic<std::size_t> keep_recent_;  // written under recent_mutex_; read without it
  mutable std::array<shard, shard_count> shards_;
  mutable std::mutex recent_mutex_;  // after every shard's mutex, never before
  mutable recent_list recent_;
};

}  // namespace weakref
