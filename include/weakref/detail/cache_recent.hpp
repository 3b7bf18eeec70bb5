// weakref/detail/cache_recent.hpp — the strong LRU front of weakref::cache: the `capacity` most
// recently used (key, value) pairs, values held strongly, most recent first.
//
// Not synchronized: weakref::cache guards it with its own mutex. Nothing here ever destroys a
// value: whatever leaves is handed back to the caller, which releases it once it holds no lock
// (a value's destructor may call into the cache).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

namespace weakref::detail {

template <class K, class V, class KeyEqual>
class cache_recent {
  struct entry {
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
  };
  struct key_ref_hash {
    std::size_t operator()(const key_ref& k) const noexcept {
      return static_cast<std::size_t>(k.hash >> 32 ^ k.hash);
    }
  };
  struct key_ref_equal {
    const KeyEqual* equal;
    bool operator()(const key_ref& a, const key_ref& b) const {
      // Same address first: erasing an entry by its own key then never calls KeyEqual.
      return a.key == b.key || (a.hash == b.hash && (*equal)(*a.key, *b.key));
    }
  };

 public:
  // What one touch lets go of: the key's previous value (if it changed) and the least recent
  // entry's value (if the front overflowed).
  using released = std::pair<std::shared_ptr<V>, std::shared_ptr<V>>;

  // `equal` must outlive this object (it is the cache's KeyEqual).
  cache_recent(std::size_t capacity, const KeyEqual& equal)
      : capacity_(capacity), index_(0, key_ref_hash{}, key_ref_equal{&equal}) {}
  cache_recent(const cache_recent&) = delete;
  cache_recent& operator=(const cache_recent&) = delete;

  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t size() const noexcept { return entries_.size(); }

  // Makes (key, value) the most recent entry. Strong guarantee: if it throws (allocation or
  // KeyEqual), nothing changed.
  released touch(std::uint64_t hash, const K& key, const std::shared_ptr<V>& value) {
    released gone;
    if (capacity_ == 0) return gone;
    if (auto it = index_.find(key_ref{hash, &key}); it != index_.end()) {
      entries_.splice(entries_.begin(), entries_, it->second);
      if (it->second->value != value) gone.first = std::exchange(it->second->value, value);
      return gone;
    }
    entries_.push_front(entry{hash, key, value});
    try {
      index_.emplace(key_ref{hash, &entries_.front().key}, entries_.begin());
    } catch (...) {
      entries_.pop_front();
      throw;
    }
    if (entries_.size() > capacity_) gone.second = pop_back();
    return gone;
  }

  // Takes `key` out of the front; returns its value (null if it was not there).
  std::shared_ptr<V> erase(std::uint64_t hash, const K& key) {
    auto it = index_.find(key_ref{hash, &key});
    if (it == index_.end()) return nullptr;
    auto pos = it->second;
    index_.erase(it);
    auto value = std::move(pos->value);
    entries_.erase(pos);
    return value;
  }

  // Empties the front; returns the values it held, least recent last.
  std::vector<std::shared_ptr<V>> clear() {
    std::vector<std::shared_ptr<V>> values;
    values.reserve(entries_.size());
    for (auto& e : entries_) values.push_back(std::move(e.value));
    index_.clear();
    entries_.clear();
    return values;
  }

  // Sets the capacity; returns the values of the least recent entries beyond it.
  std::vector<std::shared_ptr<V>> resize(std::size_t capacity) {
    std::vector<std::shared_ptr<V>> values;
    if (entries_.size() > capacity) values.reserve(entries_.size() - capacity);
    capacity_ = capacity;
    while (entries_.size() > capacity_) values.push_back(pop_back());
    return values;
  }

  // The keys, most recent first.
  std::vector<K> keys() const {
    std::vector<K> result;
    result.reserve(entries_.size());
    for (const auto& e : entries_) result.push_back(e.key);
    return result;
  }

 private:
  std::shared_ptr<V> pop_back() {
    auto& last = entries_.back();
    index_.erase(key_ref{last.hash, &last.key});  // by hash and address (see key_ref_equal)
    auto value = std::move(last.value);
    entries_.pop_back();
    return value;
  }

  std::size_t capacity_;
  list entries_;  // most recent first
  std::unordered_map<key_ref, typename list::iterator, key_ref_hash, key_ref_equal> index_;
};

}  // namespace weakref::detail
