// weakref/detail/cache_recent.hpp — the strong LRU front of weakref::cache: the `capacity` most
// recently used (key, value) pairs, values held strongly, most recent first.
//
// Not synchronized: weakref::cache guards it with its own mutex. Nothing here ever destroys a
// key or a value: entries that leave are spliced into a list handed back to the caller, which
// destroys it once it holds no lock (a key's or a value's destructor may call into the cache).
// Only lookups with a caller's key call KeyEqual; everything after them is noexcept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <list>
#include <memory>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace weakref::detail {

template <class K, class V, class KeyEqual>
class cache_recent {
  struct entry {
    // Made in place by emplace_front: the key is copied once, not into a temporary first.
    entry(std::uint64_t h, const K& k, const std::shared_ptr<V>& v) : hash(h), key(k), value(v) {}
    std::uint64_t hash;  // the cache's mixed hash of `key`: the index never calls Hash again
    K key;
    std::shared_ptr<V> value;
  };
  using list = std::list<entry>;

  // The index's key: a key by address (into the list's entry, or the caller's key for a
  // lookup), with its hash.
  struct key_ref {
    std::uint64_t hash;
    const K* key;
    bool stored;  // points into an entry (else: a caller's key, for a lookup)
  };
  // A caller's key of another type, for a heterogeneous lookup (find): the index is
  // transparent, so no K is made.
  template <class Key>
  struct key_probe {
    std::uint64_t hash;
    const Key* key;
  };
  struct key_ref_hash {
    using is_transparent = void;
    std::size_t operator()(const key_ref& k) const noexcept { return fold(k.hash); }
    template <class Key>
    std::size_t operator()(const key_probe<Key>& k) const noexcept {
      return fold(k.hash);
    }
    static std::size_t fold(std::uint64_t hash) noexcept {
      return static_cast<std::size_t>(hash >> 32 ^ hash);
    }
  };
  struct key_ref_equal {
    using is_transparent = void;
    const KeyEqual* equal;
    bool operator()(const key_ref& a, const key_ref& b) const {
      // Stored keys are unique, so two stored ones are equal only if they are the same entry:
      // inserting and erasing stored keys never calls KeyEqual (nor throws).
      if (a.key == b.key) return true;
      if (a.stored && b.stored) return false;
      return a.hash == b.hash && (*equal)(*a.key, *b.key);
    }
    // Only stored keys are in the index: the stored key first, as the cache's tables call it.
    template <class Key>
    bool operator()(const key_probe<Key>& a, const key_ref& b) const {
      return a.hash == b.hash && (*equal)(*b.key, *a.key);
    }
    template <class Key>
    bool operator()(const key_ref& a, const key_probe<Key>& b) const {
      return (*this)(b, a);
    }
  };
  using index = std::unordered_map<key_ref, typename list::iterator, key_ref_hash, key_ref_equal>;

 public:
  // Entries taken out (keys and values): the caller destroys them once it holds no lock.
  using evicted = list;
  // What one touch lets go of: the key's previous value (if it changed) and the least recent
  // entry (if the front overflowed).
  struct released {
    std::shared_ptr<V> previous;
    evicted gone;
  };
  // A key's place, found by find(); valid until the next change.
  using position = typename index::iterator;

  // `equal` must outlive this object (it is the cache's KeyEqual).
  cache_recent(std::size_t capacity, const KeyEqual& equal)
      : capacity_(capacity), index_(0, key_ref_hash{}, key_ref_equal{&equal}) {}
  cache_recent(const cache_recent&) = delete;
  cache_recent& operator=(const cache_recent&) = delete;

  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t size() const noexcept { return entries_.size(); }

  // Makes (key, value) the most recent entry; what leaves goes to `out`. Strong guarantee: if
  // it throws (KeyEqual, K's copy, allocation), nothing changed (but for an entry made for
  // the key, which goes to `out`: it is user code to destroy, and the caller holds locks).
  void touch(std::uint64_t hash, const K& key, const std::shared_ptr<V>& value, released& out) {
    if (capacity_ == 0) return;
    if (auto it = index_.find(key_ref{hash, &key, false}); it != index_.end()) {
      entries_.splice(entries_.begin(), entries_, it->second);
      if (it->second->value != value) out.previous = std::exchange(it->second->value, value);
      return;
    }
    entries_.emplace_front(hash, key, value);
    try {
      index_.emplace(key_ref{hash, &entries_.front().key, true}, entries_.begin());
    } catch (...) {
      out.gone.splice(out.gone.end(), entries_, entries_.begin());
      throw;
    }
    if (entries_.size() > capacity_) pop_back(out.gone);
  }

  // `key`'s place (a K, or another key type KeyEqual takes), or end(). Throws what KeyEqual
  // throws; changes nothing.
  template <class Key>
  position find(std::uint64_t hash, const Key& key) {
    if constexpr (std::is_same_v<Key, K>) {
      return index_.find(key_ref{hash, &key, false});
    } else {
      return index_.find(key_probe<Key>{hash, &key});
    }
  }
  position end() noexcept { return index_.end(); }

  // Takes the entry at `pos` (from find(), not end()) out, into `out`.
  void erase(position pos, evicted& out) noexcept {
    auto it = pos->second;
    index_.erase(pos);
    out.splice(out.end(), entries_, it);
  }

  // Empties the front into `out` (most recent first).
  void clear(evicted& out) noexcept {
    index_.clear();
    out.splice(out.end(), entries_);
  }

  // Sets the capacity; the least recent entries beyond it go to `out` (least recent first).
  // Allocates nothing.
  void resize(std::size_t capacity, evicted& out) noexcept {
    capacity_ = capacity;
    while (entries_.size() > capacity_) pop_back(out);
  }

  // The keys, most recent first. Throws what K's copy throws; std::bad_alloc.
  std::vector<K> keys() const {
    std::vector<K> result;
    result.reserve(entries_.size());
    for (const auto& e : entries_) result.push_back(e.key);
    return result;
  }

 private:
  // Moves the least recent entry to the end of `out`.
  void pop_back(evicted& out) noexcept {
    auto last = std::prev(entries_.end());
    index_.erase(key_ref{last->hash, &last->key, true});  // stored: compares addresses only
    out.splice(out.end(), entries_, last);
  }

  std::size_t capacity_;
  list entries_;  // most recent first
  index index_;
};

}  // namespace weakref::detail
